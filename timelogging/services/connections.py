"""PSA connections: saving them with encrypted secrets, turning them into backends, and
testing them from the admin."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction

from psa.base import ConfigurationError, ConnectionConfig, PSABackend, PSAError
from psa.http import mask_secrets
from psa.registry import backend_class, build_backend
from timelogging.crypto import SecretsUnavailable, decrypt_secrets, secrets_token
from timelogging.models import PSAConnection, Tenant
from timelogging.services.budget import BudgetExhausted, budget_spend

logger = logging.getLogger(__name__)

# Staff wait on the admin page while a look-up runs: give up sooner than a worker would.
LOOKUP_READ_TIMEOUT = 15


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
        connection.secrets_encrypted = secrets_token(connection.secrets_encrypted, merged_secrets)
        connection.full_clean(exclude=["secrets_encrypted"])
        connection.save()
    return connection


def connection_budgeted_backend(connection: PSAConnection, **kwargs: Any) -> PSABackend:
    """A backend whose requests count against the connection's request budget (shared by the
    worker and staff look-ups: Autotask's limit is shared by everything that calls its
    database). Undecryptable secrets are a ``ConfigurationError`` like any other credential
    problem, so callers only handle ``PSAError``. Close ``backend.http`` when done."""
    try:
        return connection_backend(
            connection, before_request=lambda *_: budget_spend(connection=connection), **kwargs
        )
    except SecretsUnavailable as exc:
        raise ConfigurationError(str(exc)) from exc


# --- look-ups made for staff in the admin -----------------------------------------------------
def connection_lookup_backend(connection: PSAConnection) -> PSABackend:
    """A budgeted backend for a look-up staff wait for (test, user picker, user check): a
    shorter read timeout than the worker's."""
    return connection_budgeted_backend(
        connection, read_timeout=min(django_settings.PSA_HTTP_READ_TIMEOUT, LOOKUP_READ_TIMEOUT)
    )


def lookup_error_message(*, connection: PSAConnection, error: PSAError) -> str:
    """What to show staff for a failed look-up: the PSA's own words, no secret in them."""
    if isinstance(error, BudgetExhausted):
        # Its own wording speaks of an entry waiting, which is the worker's view.
        wait = f" (about {error.retry_after:.0f} s)" if error.retry_after else ""
        return (
            "piadesk's request budget for this connection is used up for this minute: try "
            f"again shortly{wait}, or raise “Requests per hour” on the connection."
        )
    try:
        secrets = list(decrypt_secrets(connection.secrets_encrypted).values())
    except SecretsUnavailable:
        secrets = []
    # The vendors' messages quote response bodies; a PSA echoing a credential must not put it
    # on an admin page.
    return mask_secrets(error.message, secrets)


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    message: str


def connection_test(*, connection: PSAConnection) -> ConnectionTestResult:
    """Make the backend's real authenticated read (``check_connection``) and say how it went.

    Never raises for what the PSA (or the network) does: staff get the PSA's own words.
    """
    backend: PSABackend | None = None
    try:
        backend = connection_lookup_backend(connection)
        message = backend.check_connection()
    except PSAError as exc:
        return ConnectionTestResult(
            ok=False, message=lookup_error_message(connection=connection, error=exc)
        )
    except Exception:
        # A bug in a backend must not become a 500 on the admin page; the log has the trace.
        logger.exception("testing PSA connection %s failed unexpectedly", connection.pk)
        return ConnectionTestResult(
            ok=False,
            message=f"Testing the {connection.vendor_label} connection failed unexpectedly; "
            "the server log has the details.",
        )
    finally:
        if backend is not None:
            backend.http.close()
    if connection.paused_at is not None:
        # The usual next step after fixing what paused it: say so where staff look.
        message += (
            ". The connection is still paused: resume it to post its held entries "
            "(PSA connections → “Resume selected connections”)."
        )
    return ConnectionTestResult(ok=True, message=message)
