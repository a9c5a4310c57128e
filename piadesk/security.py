"""Security plumbing of the settings: the client's address for the login lockout, the DEBUG
page's settings filter, and the system checks that refuse an unsafe configuration at start
(``manage.py check``, run by ``migrate`` and ``runserver`` too)."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter


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


class SettingsFilter(SafeExceptionReporterFilter):
    """Django's filter, with DATABASE_URL (and any *_URL that may carry a password) masked in
    the settings and the request's environment on the DEBUG error page."""

    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE_URL|_URL$", flags=re.I
    )


# --- system checks (registered on import: timelogging's AppConfig.ready imports this) -------
DEFAULT_SECRET_KEY_MARKERS = ("dev-only-insecure", "django-insecure")
MIN_SECRET_KEY_LENGTH = 50


@register(Tags.security, deploy=False)
def check_secret_key(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """A short or default SECRET_KEY is refused when DEBUG is off (not only with --deploy)."""
    if settings.DEBUG:
        return []
    key = str(settings.SECRET_KEY)
    if any(marker in key for marker in DEFAULT_SECRET_KEY_MARKERS):
        return [
            Error(
                "SECRET_KEY is the development default.",
                hint="Set SECRET_KEY to a random value of 50 characters or more, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
                id="piadesk.E001",
            )
        ]
    if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 5:
        return [
            Error(
                f"SECRET_KEY is too short or too simple ({len(key)} characters).",
                hint="Use a random value of 50 characters or more.",
                id="piadesk.E002",
            )
        ]
    return []


@register(Tags.security)
def check_encryption_keys(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Every PIADESK_ENCRYPTION_KEYS entry must be a Fernet key: a bad one would otherwise
    surface as a 500 when a connection is saved."""
    from cryptography.fernet import Fernet

    errors: list[CheckMessage] = []
    for position, key in enumerate(settings.PIADESK_ENCRYPTION_KEYS, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"PIADESK_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 bytes, "
                    "url-safe base64).",
                    hint="Generate one with `python manage.py generate_encryption_key`.",
                    id="piadesk.E003",
                )
            )
    return errors
