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
    """Create or update a connection.

    ``secrets`` holds only the secrets being set: a secret left out (or blank) keeps its stored
    value, so that forms never need to show a secret back. Raises ``ValidationError`` with
    field errors when the vendor's config rules are not met.
    """
    backend = backend_class(vendor)
    known = {f.name for f in backend.config_fields}
    secret_names = {f.name for f in backend.config_fields if f.secret}
    stored: dict[str, str] = {}
    if connection is not None and connection.vendor == vendor:
        stored = decrypt_secrets(connection.secrets_encrypted)
    merged_secrets = {
        k: v
        for k, v in {**stored, **{k: v for k, v in secrets.items() if v}}.items()
        if k in secret_names
    }
    clean_settings = {k: v for k, v in settings.items() if k in known and k not in secret_names}
    errors = backend.validate_config(clean_settings, merged_secrets)
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


def active_connection(*, tenant_id: int) -> PSAConnection | None:
    return PSAConnection.objects.filter(tenant_id=tenant_id, is_active=True).first()
