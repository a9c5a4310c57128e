"""PSA connections: saving them with encrypted secrets, turning them into backends, and
testing them from the admin."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from psa.base import ConfigurationError, ConnectionConfig, PSABackend, PSAError
from psa.http import mask_secrets
from psa.outbound import OutboundPolicy
from psa.registry import backend_class, build_backend
from timelogging.audit import Operation, operation_record
from timelogging.crypto import (
    SecretsUnavailable,
    decrypt_secrets,
    encrypt_secrets,
    secrets_token,
)
from timelogging.models import PSAConnection, Tenant
from timelogging.services.budget import BudgetExhausted, budget_spend

logger = logging.getLogger(__name__)

# Staff wait on the admin page while a look-up runs: give up sooner than a worker would, per
# request and over all of a look-up's requests (zone or token, then the read or the search).
LOOKUP_READ_TIMEOUT = 15
LOOKUP_DEADLINE_SECONDS = 45


class _LookupLimits(TypedDict):
    read_timeout: float
    deadline_seconds: float


def _lookup_limits() -> _LookupLimits:
    return {
        "read_timeout": min(django_settings.PSA_HTTP_READ_TIMEOUT, LOOKUP_READ_TIMEOUT),
        "deadline_seconds": min(
            django_settings.PSA_ATTEMPT_DEADLINE_SECONDS, LOOKUP_DEADLINE_SECONDS
        ),
    }


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


def connection_destination_changes(
    *, connection: PSAConnection | None, vendor: str, settings: Mapping[str, Any]
) -> list[str]:
    """The labels of the fields deciding where the secrets go (the backend's
    ``destination_fields``: addresses, the company or user the secrets belong to) that
    ``settings`` changes on the stored ``connection``; empty for a new connection."""
    if connection is None or connection.pk is None or connection.vendor != vendor:
        return []
    backend = backend_class(vendor)
    labels = {f.name: f.label for f in backend.config_fields}
    stored = connection.settings or {}
    return [
        labels.get(name, name)
        for name in backend.destination_fields
        if _setting_text(stored.get(name)) != _setting_text(settings.get(name))
    ]


def _setting_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def connection_secrets_merge(
    *,
    connection: PSAConnection | None,
    vendor: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
) -> dict[str, str]:
    """The secrets a save would store: the stored ones, overridden by those typed in.

    A secret left out (or blank) keeps its stored value, so forms never need to show a secret
    back, but only while the destination stays the same: with a new address (or company, API
    user, Halo tenant) in ``settings`` only the secrets typed in count. Otherwise whoever may
    edit a connection could point it at a server of theirs and receive the stored secrets
    (issue 9): staff are trusted with their tenant's settings, not with the secrets.
    The stored ones are only read when needed, so that re-entering every secret works
    even after the encryption key was lost (``SecretsUnavailable`` otherwise).
    """
    secret_names = {f.name for f in backend_class(vendor).config_fields if f.secret}
    typed = {k: v for k, v in secrets.items() if v and k in secret_names}
    if connection is None or connection.vendor != vendor or secret_names <= typed.keys():
        return typed
    if connection_destination_changes(connection=connection, vendor=vendor, settings=settings):
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
    """``{field: message}`` for what the vendor's rules refuse (empty when valid), and for
    each secret not typed again when the destination changes."""
    merged = connection_secrets_merge(
        connection=connection, vendor=vendor, settings=settings, secrets=secrets
    )
    clean_settings = connection_settings_clean(vendor=vendor, settings=settings)
    errors = backend_class(vendor).validate_config(clean_settings, merged)
    for name, message in _outbound_errors(vendor=vendor, settings=clean_settings).items():
        errors.setdefault(name, message)
    changed = connection_destination_changes(
        connection=connection, vendor=vendor, settings=clean_settings
    )
    if changed:
        for field in backend_class(vendor).config_fields:
            if field.secret and not secrets.get(field.name):
                errors[field.name] = secret_retype_message(changed, field.label)
    return errors


def _outbound_errors(*, vendor: str, settings: Mapping[str, Any]) -> dict[str, str]:
    """The addresses piadesk's outbound policy refuses, said when saving (the same policy is
    enforced again when connecting, ``psa.outbound``: a name may resolve differently then)."""
    policy = OutboundPolicy.from_settings()
    errors: dict[str, str] = {}
    for field in backend_class(vendor).config_fields:
        value = settings.get(field.name)
        if field.kind != "url" or not isinstance(value, str) or not value.strip():
            continue
        try:
            host = urlsplit(value.strip()).hostname
        except ValueError:
            continue  # the vendor's own check says what is wrong with it
        if host and (message := policy.check_host(host)):
            errors[field.name] = message
    return errors


def secret_retype_message(changed: list[str], label: str) -> str:
    what = " and ".join(changed)
    return (
        f"You changed the {what}: type the {label} again. piadesk sends a stored secret "
        "only to where it was typed for."
    )


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
    errors = connection_validate(
        connection=connection, vendor=vendor, settings=settings, secrets=secrets
    )
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})
    merged_secrets = connection_secrets_merge(
        connection=connection, vendor=vendor, settings=settings, secrets=secrets
    )
    clean_settings = connection_settings_clean(vendor=vendor, settings=settings)
    # Secrets bound to a new destination are new credentials, even when typed with the same
    # values: a new token, so that the configuration history says "credentials changed".
    rebound = connection_destination_changes(
        connection=connection, vendor=vendor, settings=clean_settings
    )

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
        connection.secrets_encrypted = (
            encrypt_secrets(merged_secrets)
            if rebound
            else secrets_token(connection.secrets_encrypted, merged_secrets)
        )
        connection.full_clean(exclude=["secrets_encrypted"])
        connection.save()
    return connection


def connection_budgeted_backend(
    connection: PSAConnection, *, requests_counted: int = 0, **kwargs: Any
) -> PSABackend:
    """A backend whose requests count against the connection's request budget (shared by the
    worker and staff look-ups: Autotask's limit is shared by everything that calls its
    database); its first ``requests_counted`` requests were counted already (the worker's
    claim counts the first). Undecryptable secrets are a ``ConfigurationError`` like any
    other credential problem, so callers only handle ``PSAError``. Close ``backend.http``
    when done."""
    uncounted = requests_counted

    def count(*_: Any) -> None:
        nonlocal uncounted
        if uncounted > 0:
            uncounted -= 1
        else:
            budget_spend(connection=connection)

    try:
        return connection_backend(connection, before_request=count, **kwargs)
    except SecretsUnavailable as exc:
        raise ConfigurationError(str(exc)) from exc


def _typed_lookup_backend(
    connection: PSAConnection, *, settings: Mapping[str, Any], secrets: Mapping[str, str]
) -> PSABackend:
    """A look-up backend for values typed on the connection's page and not saved yet
    (``ValidationError`` when the connection could not be saved with them)."""
    vendor = connection.vendor
    errors = connection_validate(
        connection=connection, vendor=vendor, settings=settings, secrets=secrets
    )
    if errors:
        raise ValidationError(list(errors.values()))
    try:
        merged = connection_secrets_merge(
            connection=connection, vendor=vendor, settings=settings, secrets=secrets
        )
    except SecretsUnavailable as exc:
        raise ConfigurationError(str(exc)) from exc
    config = ConnectionConfig(
        vendor=vendor,
        settings=connection_settings_clean(vendor=vendor, settings=settings),
        secrets=merged,
        # Its own cache entries (codebase, zone, token): the typed values may differ.
        cache_key=f"psa-connection-{connection.pk}-unsaved-{uuid.uuid4().hex}",
    )
    return build_backend(
        config, before_request=lambda *_: budget_spend(connection=connection), **_lookup_limits()
    )


# --- look-ups made for staff in the admin -----------------------------------------------------
def connection_lookup_backend(connection: PSAConnection) -> PSABackend:
    """A budgeted backend for a look-up staff wait for (test, user picker, user check): a
    shorter read timeout and deadline than the worker's."""
    return connection_budgeted_backend(connection, **_lookup_limits())


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


def connection_test(
    *,
    connection: PSAConnection,
    settings: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    actor: Any = None,
) -> ConnectionTestResult:
    """Make the backend's real authenticated read (``check_connection``) and say how it went.

    A test of the stored connection is its last test (``connection_test_record``: the state
    staff see, and a row of the history by ``actor``). With ``settings`` (and ``secrets``
    typed), the values of an edited, unsaved form are tested instead, and nothing is recorded:
    they are not the connection's. The stored secrets fill in only what is not typed and only
    while the destination is unchanged (``connection_secrets_merge``), so a test can never
    send them anywhere new. Never raises for what the PSA (or the network) does: staff get
    the PSA's own words.
    """
    result = _connection_try(connection=connection, settings=settings, secrets=secrets)
    if settings is None:
        connection_test_record(connection=connection, result=result, actor=actor)
    return result


def connection_test_record(
    *, connection: PSAConnection, result: ConnectionTestResult, actor: Any
) -> None:
    """Keep ``result`` as the connection's last test, and write it to the
    configuration/operations history (who, and the result from → to). An update of those
    fields only: the connection's ``updated_at`` (its backends' cache key) stays."""
    new = PSAConnection.TestResult.PASSED if result.ok else PSAConnection.TestResult.FAILED
    changes = {
        "last_test_result": [connection.last_test_result, str(new)],
        "last_test_message": [connection.last_test_message, result.message],
    }
    connection.last_test_at = timezone.now()
    connection.last_test_result = new
    connection.last_test_message = result.message
    with transaction.atomic():
        PSAConnection.objects.filter(pk=connection.pk).update(
            last_test_at=connection.last_test_at,
            last_test_result=new,
            last_test_message=result.message,
        )
        operation_record(
            instance=connection, actor=actor, operation=Operation.TEST, reason="", changes=changes
        )


def connection_posted_since_test(*, connection: PSAConnection) -> None:
    """An entry was posted: a failed last test no longer describes the connection. Costs a
    query only when the connection (as the worker read it) shows a failed test."""
    if connection.last_test_result != PSAConnection.TestResult.FAILED:
        return
    PSAConnection.objects.filter(
        pk=connection.pk, last_test_result=PSAConnection.TestResult.FAILED
    ).update(last_test_result=PSAConnection.TestResult.POSTED_SINCE)


def _connection_try(
    *,
    connection: PSAConnection,
    settings: Mapping[str, Any] | None,
    secrets: Mapping[str, str] | None,
) -> ConnectionTestResult:
    backend: PSABackend | None = None
    try:
        if settings is None:
            backend = connection_lookup_backend(connection)
        else:
            backend = _typed_lookup_backend(connection, settings=settings, secrets=secrets or {})
        message = backend.check_connection()
    except PSAError as exc:
        return ConnectionTestResult(
            ok=False, message=lookup_error_message(connection=connection, error=exc)
        )
    except ValidationError as exc:
        return ConnectionTestResult(ok=False, message=" ".join(exc.messages))
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
