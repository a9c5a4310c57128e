"""PSA connections: saving them with encrypted secrets, and turning them into backends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from psa.base import ConnectionConfig, PSABackend
from psa.registry import backend_class, build_backend
from timelogging.crypto import decrypt_secrets, encrypt_secrets
from timelogging.models import PSAConnection, Tenant


def connection_config(connection: PSAConnection) -> ConnectionConfig:
    """The plain config a backend receives. Raises ``SecretsUnavailable`` on a wrong key."""
    return ConnectionConfig(
        vendor=connection.vendor,
        settings=dict(connection.settings),
        secrets=decrypt_secrets(connection.secrets_encrypted),
        cache_key=f"psa-connection-{connection.pk}-{connection.updated_at.timestamp():.0f}",
    )


def connection_backend(connection: PSAConnection, **kwargs: Any) -> PSABackend:
    return build_backend(connection_config(connection), **kwargs)


def connection_secrets_merge(
    *, connection: PSAConnection | None, vendor: str, secrets: Mapping[str, str]
) -> dict[str, str]:
    """The secrets a save would store: the stored ones, overridden by those typed in.

    A secret left out (or blank) keeps its stored value, so forms never need to show a secret
    back. The stored ones are only read when needed, so that re-entering every secret works
    even after the encryption key was lost (``SecretsUnavailable`` otherwise).
    """
    secret_names = {f.name for f in backend_class(vendor).config_fields if f.secret}
    typed = {k: v for k, v in secrets.items() if v and k in secret_names}
    if connection is None or connection.vendor != vendor or secret_names <= typed.keys():
        return typed
    stored = decrypt_secrets(connection.secrets_encrypted)
    return {k: v for k, v in {**stored, **typed}.items() if k in secret_names}


def connection_settings_clean(*, vendor: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    fields = backend_class(vendor).config_fields
    known = {f.name for f in fields if not f.secret}
    return {k: v for k, v in settings.items() if k in known}


def connection_validate(
    *,
    connection: PSAConnection | None,
    vendor: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
) -> dict[str, str]:
    """``{field: message}`` for what the vendor's rules refuse (empty when valid)."""
    merged = connection_secrets_merge(connection=connection, vendor=vendor, secrets=secrets)
    clean_settings = connection_settings_clean(vendor=vendor, settings=settings)
    return backend_class(vendor).validate_config(clean_settings, merged)


def connection_save(
    *,
    connection: PSAConnection | None = None,
    tenant: Tenant,
    vendor: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    is_active: bool = True,
    name: str = "",
) -> PSAConnection:
    """Create or update a connection (secrets merged as ``connection_secrets_merge`` says).

    Raises ``ValidationError`` with field errors when the vendor's config rules are not met.
    """
    merged_secrets = connection_secrets_merge(connection=connection, vendor=vendor, secrets=secrets)
    clean_settings = connection_settings_clean(vendor=vendor, settings=settings)
    errors = backend_class(vendor).validate_config(clean_settings, merged_secrets)
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})

    with transaction.atomic():
        if connection is None:
            connection = PSAConnection(tenant=tenant)
        if is_active:
            # Exactly one active connection per tenant: activating this one retires the others.
            PSAConnection.objects.filter(tenant=tenant, is_active=True).exclude(
                pk=connection.pk
            ).update(is_active=False)
        connection.vendor = vendor
        connection.name = name
        connection.is_active = is_active
        connection.settings = clean_settings
        connection.secrets_encrypted = encrypt_secrets(merged_secrets)
        connection.full_clean(exclude=["secrets_encrypted"])
        connection.save()
    return connection
