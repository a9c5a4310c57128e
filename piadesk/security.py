"""Security plumbing shared by the settings: the client's address for the login lockout."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address a login comes from (django-axes counts failures per address).

    ``REMOTE_ADDR`` unless the operator says how many proxies append to ``X-Forwarded-For``
    (``PIADESK_PROXY_COUNT``): then the entry the outermost trusted proxy added. Entries
    further left are written by the client and could be anything, so they are never used.
    """
    count = getattr(settings, "PIADESK_PROXY_COUNT", 0)
    if count > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR", "")
