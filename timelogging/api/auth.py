"""API authentication: ``Authorization: Bearer <tenant API key>``.

The tenant always comes from the key, never from the request body. Keys are stored hashed
(SHA-512 of a high-entropy random key, see ``rest_framework_api_key``), looked up by their
public prefix, and can be revoked or given an expiry date in the admin.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from timelogging.models import TenantAPIKey


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
        prefix, dot, _ = key.partition(".")
        if not dot or not prefix:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        api_key = (
            TenantAPIKey.objects.select_related("tenant")
            .filter(prefix=prefix, revoked=False)
            .first()
        )
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
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
