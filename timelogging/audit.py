"""Configuration history: who changed a tenant's configuration, when, and from what to what.

django-auditlog records it (field diffs from its ``pre_save``/``post_save`` receivers, the
signed-in user from ``AuditlogMiddleware``) into ``ConfigChange``, our
``AUDITLOG_LOGENTRY_MODEL``: auditlog's log entry plus a ``tenant`` column, stamped by its
manager from the object changed (``models.tenant_id_of``).

Why a tenant column rather than filtering auditlog's own table: a tenant's history is then one
index range (``tenant, -timestamp``) and a staff member's page can only ever read rows of their
tenant, however many objects the tenant has; deriving the tenant per row ("object pk in the
tenant's clients, tags, ... per content type") costs one subquery per model on every page and
leaks the moment a model is registered and the list is not updated.

What is recorded (``register_models``): the tenant's settings and its tag choice, time rules
(automations' log time and minutes), tags, clients' tags, PSA connections, PSA user mappings,
API keys and staff memberships. Not recorded: timestamps that
change on every save, and secrets: a connection's ``secrets_encrypted`` is masked to "none" or
"stored" before it reaches the entry, so the history says "credentials set / changed /
removed" and never holds the ciphertext. An API key's hash is left out too.

Who: the signed-in user for changes made in the admin (the middleware); nobody (shown as
"piadesk (system)") for changes made by the worker, the API's ingest (clients and automations
first reported) and management commands, which have no user.

From where: the request's address (and correlation id), which auditlog's middleware gives every
change made in a request. An API request rarely changes configuration (an ingest's first report
of an automation), so for the API that context is entered only around such a change
(``api_changes``, the middleware in ``piadesk/site_only.py``), not for every request: it
connected and disconnected a signal receiver and parsed the headers on each ingest.

Many-to-many changes (a tenant's tags, a client's tags) are recorded by ``_m2m_receiver``
rather than auditlog's own: auditlog files a change made from the other side
(``tag.clients.add(client)``, the "Add tag…" action) under the tag, as if the tag's "tags"
had changed, and records a ``clear()`` as the removal of every tag in the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

from auditlog.receivers import check_disable
from auditlog.registry import auditlog
from django.db.models import DateTimeField, Model, TextChoices
from django.db.models.signals import m2m_changed
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format

from psa.registry import BACKENDS, vendor_choices

# Stored in place of a secret's value (see the module docstring).
SECRET_NONE = "none"
SECRET_STORED = "stored"
EMPTY = "(empty)"


# Set by the middleware for an API request: enters auditlog's context of that request.
api_request_context: ContextVar[Callable[[], AbstractContextManager[Any]] | None] = ContextVar(
    "api_request_context", default=None
)


@contextmanager
def api_changes() -> Iterator[None]:
    """Around a configuration change that an API request may make: the history records the
    request's address, as for a change made on the staff site. Elsewhere it does nothing."""
    enter = api_request_context.get()
    if enter is None:
        yield
        return
    with enter():
        yield


def mask_credentials(value: str) -> str:
    """auditlog's mask for ``PSAConnection.secrets_encrypted``: whether there is a value,
    never the value (auditlog's default mask keeps half of it)."""
    return SECRET_NONE if value in ("", "None") else SECRET_STORED


def register_models() -> None:
    """Called from ``TimeloggingConfig.ready``.

    Each model lists the fields recorded (an allow-list: a field added later, a secret one
    say, is not recorded until someone decides it should be). Never listed: the tenant (the
    entry's own column, and fixed once set), ids, automatic timestamps, reverse relations.
    """
    from timelogging import models as m

    def register(model: type[Model], fields: list[str], **options: Any) -> None:
        if not auditlog.contains(model):
            auditlog.register(model, include_fields=fields, **options)

    register(
        m.Tenant,
        [
            "name",
            "time_logging_enabled",
            "apply_to",
            "log_as",
            "specified_psa_user_ref",
            "specified_psa_user_name",
            "time_zone",
        ],
    )
    register(m.Tag, ["name"])
    # Clients: only their tags are configuration (``_m2m_receiver`` below, which needs no
    # registration). Registering them would cost every run that renames a client a read of
    # the old row in the ingest transaction. Automations: their time rule.
    register(m.Automation, ["log_time", "minutes"])
    register(
        m.PSAConnection,
        [
            "vendor",
            "name",
            "is_active",
            "settings",
            "secrets_encrypted",
            "paused_at",
            "pause_reason",
            "requests_per_hour",
            "max_concurrency",
        ],
        mask_fields=["secrets_encrypted"],
        mask_callable="timelogging.audit.mask_credentials",
    )
    register(m.PSAUserMapping, ["connection", "email", "psa_user_ref", "psa_user_name", "source"])
    # Not the library's "id" (it embeds the key's hash) nor "hashed_key".
    register(m.TenantAPIKey, ["name", "prefix", "read_only", "revoked", "expiry_date"])
    register(m.StaffProfile, ["user"])
    # The notification webhook: its URL is a credential, recorded as set / changed / removed.
    register(
        m.NotificationWebhook,
        ["style", "url_encrypted", "is_active"],
        mask_fields=["url_encrypted"],
        mask_callable="timelogging.audit.mask_credentials",
    )

    for model, field_name in ((m.Tenant, "apply_tags"), (m.Client, "tags")):
        through = getattr(model, field_name).through
        m2m_changed.connect(
            _m2m_receiver(model, field_name),
            sender=through,
            weak=False,
            dispatch_uid=f"piadesk-config-history-{model._meta.label}-{field_name}",
        )


def _m2m_receiver(owner: type[Model], field_name: str) -> Any:
    """Records additions and removals on ``owner.field_name`` as a change of each owner
    object concerned, whichever side the change was made from."""

    @check_disable
    def receiver(
        sender: Any,
        instance: Model,
        action: str,
        reverse: bool,
        model: type[Model],
        pk_set: set[Any] | None,
        **kwargs: Any,
    ) -> None:
        from timelogging.models import ConfigChange

        if action == "pre_clear":
            # post_clear no longer knows what was there: remember it on the instance.
            accessor = _reverse_name(owner, field_name) if reverse else field_name
            related = getattr(instance, accessor)
            cleared = set(related.values_list("pk", flat=True))
            instance._piadesk_cleared = cleared  # type: ignore[attr-defined]  # read in post_clear
            return
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        if action == "post_clear":
            pk_set = getattr(instance, "_piadesk_cleared", set())
        if not pk_set:
            return
        operation = "add" if action == "post_add" else "delete"
        if not reverse:
            changed = model._default_manager.filter(pk__in=pk_set).order_by("pk")
            ConfigChange.objects.log_m2m_changes(changed, instance, operation, field_name)
            return
        # Changed from the other side: ``instance`` is the related object (a tag), ``pk_set``
        # the owners (clients) whose field changed.
        one = type(instance)._default_manager.filter(pk=instance.pk)
        for owner_obj in model._default_manager.filter(pk__in=pk_set).order_by("pk"):
            ConfigChange.objects.log_m2m_changes(one, owner_obj, operation, field_name)

    return receiver


def _reverse_name(owner: type[Model], field_name: str) -> str:
    # A many-to-many field's remote side: the accessor the other model reaches owners by.
    remote = getattr(owner._meta.get_field(field_name), "remote_field", None)
    accessor = remote.get_accessor_name() if remote is not None else None
    if not accessor:
        raise ValueError(f"{owner.__name__}.{field_name} has no reverse accessor")
    return str(accessor)


# --- operations -------------------------------------------------------------------------------
class Operation(TextChoices):
    """What a person (or a resume) did to an entry, or a person to a connection ("Test
    connection" of its stored settings): recorded in the same history."""

    RETRY = "retry", "Retried"
    REDECIDE = "redecide", "Decided again with the current settings"
    DISCARD = "discard", "Discarded"
    TEST = "test", "Tested"


def recorded_models() -> list[type[Model]]:
    """Every model the history has rows for: those whose changes django-auditlog records
    (``register`` above) and those whose operations ``operation_record`` records (time
    entries: retry, re-decide, discard)."""
    from timelogging.models import TimeEntry

    models = list(auditlog.get_models())
    return models if TimeEntry in models else [*models, TimeEntry]


def operation_record(
    *, instance: Model, actor: Any, operation: Operation, reason: str, changes: dict[str, Any]
) -> Any:
    """One row of the configuration/operations history for an operation on ``instance``:
    who (``actor``; None is piadesk), what (``operation``), why (``reason``) and each field
    from → to (``changes``), so the state before it stays readable."""
    from timelogging.models import ConfigChange

    user = actor if getattr(actor, "is_authenticated", False) else None
    return ConfigChange.objects.log_create(
        instance,
        force_log=True,
        action=ConfigChange.Action.UPDATE,
        changes=changes,
        actor=user,
        additional_data={"operation": str(operation), "reason": reason},
    )


# --- reading the history ----------------------------------------------------------------------
@dataclass(frozen=True)
class ChangeLine:
    """One field of one change, as people read it."""

    field: str
    old: str
    new: str
    # "m2m" lines list what was added or removed (``new``) and have no ``old``.
    kind: str = "value"


def change_lines(entry: Any) -> list[ChangeLine]:
    """``entry.changes`` in words: field labels, choice labels, Yes/No, "(empty)", and
    credentials as set / changed / removed."""
    model = entry.content_type.model_class()
    lines = []
    data = entry.additional_data if isinstance(entry.additional_data, dict) else {}
    if data.get("operation") in Operation.values:
        # An operation (audit.operation_record): what was done and why come first.
        label = Operation(data["operation"]).label
        lines.append(ChangeLine(field="operation", old="", new=label, kind="operation"))
        if data.get("reason"):
            lines.append(ChangeLine(field="why", old="", new=data["reason"], kind="operation"))
    for name, change in (entry.changes or {}).items():
        label = _field_label(model, name)
        if isinstance(change, dict) and change.get("type") == "m2m":
            verb = "added" if change.get("operation") == "add" else "removed"
            objects = ", ".join(str(o) for o in change.get("objects", []))
            lines.append(ChangeLine(field=label, old="", new=f"{verb}: {objects}", kind="m2m"))
            continue
        old, new = (list(change) + [None, None])[:2]
        if name == "secrets_encrypted":
            lines.append(ChangeLine(field="credentials", old="", new=_credentials(old, new)))
            continue
        lines.append(
            ChangeLine(field=label, old=_display(model, name, old), new=_display(model, name, new))
        )
    return lines


def _credentials(old: Any, new: Any) -> str:
    if old in (None, SECRET_NONE):
        return "credentials set" if new == SECRET_STORED else "no credentials"
    if new == SECRET_NONE:
        return "credentials removed"
    return "credentials changed"


def _field_label(model: type[Model] | None, name: str) -> str:
    if model is None:
        return name
    if name == "secrets_encrypted":
        return "credentials"
    try:
        field = model._meta.get_field(name)
    except Exception:
        return name.replace("_", " ")
    # A reverse relation has no verbose name of its own.
    return str(getattr(field, "verbose_name", None) or name.replace("_", " "))


def _display(model: type[Model] | None, name: str, value: Any) -> str:
    if value is None or value == "None" or value == "":
        return EMPTY
    field = None
    if model is not None:
        try:
            field = model._meta.get_field(name)
        except Exception:
            field = None
    if isinstance(value, dict):
        # A connection's settings: each by its label on the connection form ("Company ID"),
        # not its key ("company_id").
        labels = _config_field_labels()
        shown = (f"{labels.get(k, k)}: {_plain(v)}" for k, v in sorted(value.items()))
        return ", ".join(shown) or EMPTY
    if name == "vendor" and isinstance(value, str):
        # Vendors are not model choices (psa.registry is their one list): "ConnectWise PSA",
        # not "connectwise".
        return dict(vendor_choices()).get(value, value)
    if isinstance(field, DateTimeField) and isinstance(value, str):
        # auditlog keeps str(datetime) ("2026-12-02 05:52:38.864613+00:00"): shown as the
        # page shows times, in its zone and labelled.
        moment = parse_datetime(value)
        if moment is not None:
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment, dt.UTC)
            return date_format(timezone.localtime(moment), "DATETIME_FORMAT")
    choices = dict(getattr(field, "choices", None) or [])
    if choices and isinstance(value, str | int) and value in choices:
        return str(choices[value])
    return _plain(value)


def _plain(value: Any) -> str:
    if value is True or value == "True":
        return "Yes"
    if value is False or value == "False":
        return "No"
    return str(value)


@cache
def _config_field_labels() -> dict[str, str]:
    """Every vendor's connection fields, key → label (vendors share keys rarely, and then
    their label: a history line needs no vendor to be read)."""
    return {f.name: f.label for backend in BACKENDS.values() for f in backend.config_fields}
