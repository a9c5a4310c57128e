"""API authentication: ``Authorization: Bearer <tenant API key>``.

The tenant always comes from the key, never from the request body. Keys are stored hashed
(SHA-512 of a high-entropy random key, see ``rest_framework_api_key``), looked up by their
public prefix, and can be revoked or given an expiry date in the admin.

A key verified against the database is trusted by the process for
``PIADESK_API_CACHE_SECONDS`` (default 5; 0 reads the key on every request): the automation
service sends hundreds of runs a minute with one key, and reading and checking it was a fifth
of an ingest. So a revoked key is refused by every process within that many seconds; an
expiry date is checked on every request. Kept under the SHA-256 of the key sent, never the key
itself, and only after a successful verification (an unknown or wrong key is always read and
refused). The tenant's settings do not come from here: the ingest reads them fresh
(services/ingest_cache.py).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from timelogging.models import TenantAPIKey

# SHA-256 of a verified key -> (until, in time.monotonic() seconds; the key's row).
_verified: dict[str, tuple[float, TenantAPIKey]] = {}
# Distinct keys kept at most per process (a few per tenant in practice): beyond, start afresh.
MAX_VERIFIED_KEYS = 10_000
_monotonic = time.monotonic  # the tests move the clock through this name


def clear_verified_keys() -> None:
    _verified.clear()


def _verified_key(key: str) -> TenantAPIKey:
    seconds = settings.PIADESK_API_CACHE_SECONDS
    digest = hashlib.sha256(key.encode()).hexdigest()
    now = _monotonic()
    kept = _verified.get(digest) if seconds else None
    if kept is not None and kept[0] > now:
        return kept[1]
    prefix, dot, _ = key.partition(".")
    if not dot or not prefix:
        raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
    api_key = (
        TenantAPIKey.objects.select_related("tenant").filter(prefix=prefix, revoked=False).first()
    )
    if api_key is None or not api_key.is_valid(key):
        _verified.pop(digest, None)
        raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
    if seconds:
        if len(_verified) >= MAX_VERIFIED_KEYS:
            _verified.clear()
        _verified[digest] = (now + seconds, api_key)
    return api_key


class TenantAPIKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None  # -> 401 from the permission check, with the WWW-Authenticate hint
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != self.keyword.lower() or not key:
            raise exceptions.AuthenticationFailed(
                "Send the tenant API key as 'Authorization: Bearer <key>'."
            )
        api_key = _verified_key(key)
        if api_key.expiry_date is not None and api_key.expiry_date < timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        # request.user stays None: the API's caller is a tenant's service, not a person.
        return (None, api_key)

    def authenticate_header(self, request):
        return self.keyword


class IsTenantClient(permissions.BasePermission):
    """Requests authenticated with a tenant API key; read-only keys may only read."""

    message = "This API key is read-only: it can read the history but not report runs."

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, TenantAPIKey):
            return False
        return request.method in permissions.SAFE_METHODS or not request.auth.read_only


def request_tenant(request):
    return request.auth.tenant
