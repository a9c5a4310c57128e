"""Recording a finished automation run: the run, its decision, its entry, and the queued post.

Everything happens in one transaction, including the django-q2 task row (the ORM broker
writes it through the same connection), so a run is either fully recorded and queued or not
recorded at all: an accepted run can never be left without its post.

The request costs a fixed number of queries whatever the tenant's number of tags, clients and
automations (tests/timelogging/test_ingest_queries.py keeps it so).

Idempotency costs no round trip of its own: the run is inserted with ``INSERT … ON CONFLICT
(tenant_id, run_id) DO NOTHING RETURNING id`` (PostgreSQL, and SQLite ≥ 3.35), and the existing
run is read only when that inserted nothing: a retry, or a different run under a used run_id
(409, and the transaction is rolled back: a refused report creates no client or automation).
On PostgreSQL a concurrent insert of the same run_id makes ours wait for it to commit or roll
back, so the retry then finds the committed run; ``RunRace`` remains for a conflicting row that
is not visible after all.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from timelogging import audit
from timelogging.models import (
    Automation,
    AutomationRun,
    Client,
    Tenant,
    TimeEntry,
)
from timelogging.services import ingest_cache
from timelogging.services.decision import Decision, SettingsInForce, decide, entry_window
from timelogging.services.ingest_cache import KnownAutomation, KnownClient, TenantCatalog
from timelogging.services.rows import row_insert

NOTES_MAX_CHARS = 4000  # fits every supported PSA's notes field with room to spare


class RunConflict(Exception):
    """The run_id was already reported with different content."""


class RunRace(Exception):
    """A concurrent submission of the same run_id holds it: the client should retry."""


@dataclass(frozen=True)
class IngestResult:
    run: AutomationRun
    created: bool


def content_hash(data: dict[str, Any]) -> str:
    """A stable hash of a run's content, so that a retry can be told from a different run."""

    def normalise(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).isoformat()
        if isinstance(value, dict):
            return {k: normalise(v) for k, v in value.items()}
        return value

    canonical = json.dumps(normalise(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_ingest(*, tenant: Tenant, data: dict[str, Any]) -> IngestResult:
    """Record a validated run report (see ``api.serializers.RunReportSerializer``).

    Returns the existing run (``created=False``) when the same run_id was already reported
    with the same content; raises ``RunConflict`` when it was reported with other content.
    """
    digest = content_hash(data)
    # Before the transaction: the settings in force and the known keys, as of now.
    catalog = ingest_cache.tenant_catalog(tenant_id=tenant.pk)
    try:
        with transaction.atomic():
            return _record(catalog=catalog, data=data, digest=digest)
    except IntegrityError as exc:
        # A concurrent submission of the same run_id committed first: answer with its run.
        existing = _existing_run(tenant=tenant, run_id=data["run_id"], digest=digest)
        if existing is not None:
            return IngestResult(existing, created=False)
        if _is_run_id_race(exc):
            # The other submission is not visible (yet, or it rolled back): the client's retry
            # will find it or record the run.
            raise RunRace("A submission of the same run_id is in progress; retry it.") from exc
        raise  # anything else is a bug: a 500, logged, never "retry it"


def _is_run_id_race(exc: IntegrityError) -> bool:
    """The (tenant, run_id) unique constraint, as PostgreSQL and SQLite name it."""
    text = str(exc)
    return "run_unique_per_tenant" in text or (
        "timelogging_automationrun.tenant_id, timelogging_automationrun.run_id" in text
    )


def _existing_run(*, tenant: Tenant, run_id: str, digest: str) -> AutomationRun | None:
    run = AutomationRun.objects.select_related("entry").filter(tenant=tenant, run_id=run_id).first()
    if run is not None and run.content_hash != digest:
        raise RunConflict(
            f"run_id {run_id!r} was already reported with different content; "
            "a run_id identifies one run and cannot be reused."
        )
    return run


def _record(*, catalog: TenantCatalog, data: dict[str, Any], digest: str) -> IngestResult:
    tenant = catalog.tenant
    client = _known(
        catalog.clients,
        Client,
        catalog=catalog,
        ref=data["client"],
        make=lambda row: KnownClient.of(row, _scope_tag_ids(tenant=tenant, client_id=row.pk)),
    )
    automation = _known(
        catalog.automations,
        Automation,
        catalog=catalog,
        ref=data["automation"],
        make=KnownAutomation.of,
    )
    decision = run_decision(
        tenant=tenant,
        client=client,
        automation=automation,
        outcome=data["outcome"],
        started_at=data["started_at"],
        completed_at=data["completed_at"],
    )
    run = AutomationRun(
        tenant=tenant,
        run_id=data["run_id"],
        automation_id=automation.id,
        client_id=client.id,
        ticket_id=data["ticket_id"],
        started_by=data["started_by"],
        started_at=data["started_at"],
        completed_at=data["completed_at"],
        outcome=data["outcome"],
        summary=data.get("summary", ""),
        content_hash=digest,
        decision=AutomationRun.Decision.LOG if decision.log else AutomationRun.Decision.SKIP,
        skip_reason=decision.skip_reason,
    )
    if not _insert_unless_reported(run):
        existing = _existing_run(tenant=tenant, run_id=run.run_id, digest=digest)
        if existing is None:
            # The conflicting row is not visible to this statement's snapshot: the client's
            # retry will find it (or record the run if it was rolled back).
            raise RunRace("A submission of the same run_id is in progress; retry it.")
        return IngestResult(existing, created=False)
    if decision.log:
        entry = TimeEntry(
            tenant=tenant,
            run=run,
            client_id=client.id,
            automation_id=automation.id,
            **entry_decided_fields(tenant=tenant, run=run, decision=decision),
            notes=entry_notes(run=run, automation_name=automation.name or automation.key),
            next_attempt_at=run.received_at,
            enqueued_at=run.received_at,
        )
        row_insert(entry)
        run.entry = entry
        entry_enqueue(entry_id=entry.pk, broker=_ingest_broker())
    return IngestResult(run, created=True)


def _insert_unless_reported(run: AutomationRun) -> bool:
    """Insert the run unless its (tenant, run_id) exists: one statement, no look-up first.
    Returns False when the run_id was already reported."""
    return row_insert(run, unless="run_unique_per_tenant")


def run_decision(
    *,
    tenant: Tenant,
    client: Client | KnownClient,
    automation: Automation | KnownAutomation,
    outcome: str,
    started_at: dt.datetime,
    completed_at: dt.datetime,
) -> Decision:
    """The decision for a run with the settings in force now: when it is reported (from the
    tenant's catalog: ``KnownClient``/``KnownAutomation``), and when staff or a resume decide
    it again (``services/operations.py``, with the rows)."""
    # Only the tags that matter are known: the client's tags that are also "apply to" tags.
    # Their intersection decides the scope.
    scope_tag_ids = (
        client.scope_tag_ids
        if isinstance(client, KnownClient)
        else _scope_tag_ids(tenant=tenant, client_id=client.pk)
    )
    return decide(
        settings=SettingsInForce(
            enabled=tenant.time_logging_enabled,
            apply_to=tenant.apply_to,
            apply_tag_ids=scope_tag_ids,
            log_as=tenant.log_as,
        ),
        client_tag_ids=scope_tag_ids,
        automation_log_time=automation.log_time,
        automation_minutes=automation.minutes,
        outcome=outcome,
        started_at=started_at,
        completed_at=completed_at,
    )


def _scope_tag_ids(*, tenant: Tenant, client_id: int) -> frozenset[int]:
    """The client's tags that are among the tenant's "apply to" tags: one query, and only
    with "Based on Tag" (otherwise the decision needs none)."""
    if not (tenant.time_logging_enabled and tenant.apply_to == Tenant.ApplyTo.TAGS):
        return frozenset()
    return frozenset(
        Client.tags.through.objects.filter(
            client_id=client_id,
            tag_id__in=Tenant.apply_tags.through.objects.filter(tenant_id=tenant.pk).values(
                "tag_id"
            ),
        ).values_list("tag_id", flat=True)
    )


def entry_decided_fields(
    *, tenant: Tenant, run: AutomationRun, decision: Decision
) -> dict[str, Any]:
    """The entry's fields that a "log" decision sets: who (how), how long, the window."""
    assert decision.log and decision.minutes is not None
    start, end = entry_window(started_at=run.started_at, minutes=decision.minutes)
    specified = tenant.log_as == Tenant.LogAs.SPECIFIED
    return {
        "log_as": tenant.log_as,
        "minutes": decision.minutes,
        "start": start,
        "end": end,
        # The specified user is fixed by the settings in force now; the others are resolved
        # against the PSA when posting.
        "psa_user_ref": tenant.specified_psa_user_ref if specified else "",
        "psa_user_name": tenant.specified_psa_user_name if specified else "",
    }


ClientOrAutomation = TypeVar("ClientOrAutomation", Client, Automation)


Known = TypeVar("Known", KnownClient, KnownAutomation)


def _known(
    kept: dict[str, Known],
    model: type[ClientOrAutomation],
    *,
    catalog: TenantCatalog,
    ref: dict[str, Any],
    make: Callable[[ClientOrAutomation], Known],
) -> Known:
    """The client or automation of ``ref``: as kept by the catalog unless the report renames
    it; else read (or created) and kept when it was only read."""
    known = kept.get(ref["key"])
    if known is not None and _name_unchanged(known.name, ref):
        return known
    row, read_only = _upsert_by_key(model, tenant=catalog.tenant, ref=ref)
    known = make(row)
    if read_only:
        catalog.keep(kept, ref["key"], known)
    return known


def _name_unchanged(known_name: str, ref: dict[str, Any]) -> bool:
    return not ref.get("name") or ref["name"] == known_name


def _upsert_by_key(
    model: type[ClientOrAutomation], *, tenant: Tenant, ref: dict[str, Any]
) -> tuple[ClientOrAutomation, bool]:
    """Get or create a client/automation by the service's key; a sent name updates it.

    Returns the row and whether it was only read: a row created or renamed here is not kept
    in the catalog (see services/ingest_cache.py).
    """
    name = ref.get("name") or ""
    with audit.api_changes():
        return _get_or_create_named(model, tenant=tenant, key=ref["key"], name=name)


def _get_or_create_named(
    model: type[ClientOrAutomation], *, tenant: Tenant, key: str, name: str
) -> tuple[ClientOrAutomation, bool]:
    obj, created = model.objects.get_or_create(tenant=tenant, key=key, defaults={"name": name})
    if created:
        return obj, False
    if name and obj.name != name:
        obj.name = name
        obj.save(update_fields=["name"])
        return obj, False
    return obj, True


def entry_notes(*, run: AutomationRun, automation_name: str) -> str:
    """Notes written on the ticket: what was done, by which automation, and the reference.

    The reference line comes last and is never truncated: it is how piadesk finds the entry
    again after an unknown outcome instead of posting it twice.
    """
    footer = (
        f"\n\nAutomation: {automation_name}"
        f"\nStarted by: {run.started_by}"
        f"\nLogged automatically by piadesk. Reference: {run.reference_text}"
    )
    summary = (run.summary or "Automation completed.").strip()
    room = NOTES_MAX_CHARS - len(footer)
    if len(summary) > room:
        summary = summary[: room - 1].rstrip() + "…"
    return summary + footer


def entry_enqueue(*, entry_id: int, broker: Broker | None = None) -> None:
    """Queue the post (the entry id only). Called inside the transaction that created the
    entry or marked it enqueued, so the task row commits with it. ``broker``: django-q2's
    configured one unless given (the ingest gives ``_ingest_broker()``)."""
    async_task(
        "timelogging.tasks.post_time_entry",
        entry_id,
        task_name=f"post-entry-{entry_id}",
        group="post-time-entry",
        broker=broker,
    )


class _InTransactionORMBroker(ORM):  # type: ignore[misc]  # django-q2 ships no type hints
    """django-q2's ORM broker, but its queue row written with one plain INSERT
    (``rows.row_insert``) instead of the ORM's ``create``, and made once per process instead
    of on every ``async_task``. Only for an enqueue inside the ingest's transaction: the ORM
    broker's ``get_connection`` would first close stale connections, which a long-lived broker
    loop needs and a transaction in progress must not."""

    def enqueue(self, task: str) -> int:
        row = OrmQ(key=self.list_key or Conf.CLUSTER_NAME, payload=task, lock=timezone.now())
        row_insert(row)
        return int(row.pk)


@functools.cache
def _ingest_broker() -> Broker | None:
    # Only while the queue is django-q2's ORM broker or a subclass of it (the project's own,
    # piadesk/broker.py, differs in its dequeue only): the task row commits with the entry.
    # Any other broker is used as configured.
    return _InTransactionORMBroker() if isinstance(get_broker(), ORM) else None


def sweep_enqueue() -> None:
    """Queue a sweep now (after staff released entries), instead of waiting for the schedule."""
    async_task("timelogging.tasks.sweep_entries", task_name="sweep-entries", group="sweep")
