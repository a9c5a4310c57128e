"""The seeded history: automation runs with their decisions, and the time entries logged for
them, in the order they would have arrived (ids grow with time, as in production, so that the
tables' physical order matches their date indexes as it would after months of real traffic).

What is realistic and why it matters for the benchmarks:

- about 85 % of runs are logged and 15 % skipped, with the real skip reasons, each consistent
  with the tenant's settings (only "Based on Tag" tenants skip clients out of scope, only
  switched-off automations skip as "automation off", failed runs as "not completed");
- weekdays busier than weekends, office hours busier than nights, slow growth over the year;
- entries mostly posted; the last days hold the few still waiting to retry, pending or held
  (behind a paused connection), with the error classes and the PSAs' own words;
- ConnectWise windows ending in the future are moved back, as the backend does.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction

from timelogging.benchmarks.catalog import SeedAutomation, SeedTenant, Weighted
from timelogging.benchmarks.rows import RowWriter
from timelogging.models import AutomationRun, Tenant, TimeEntry

LOGGED_SHARE = 0.85
Reason = AutomationRun.SkipReason
Status = TimeEntry.Status

# Why runs are skipped, per kind of tenant ("Based on Tag" or "All Clients").
SKIP_WEIGHTS = {
    Tenant.ApplyTo.TAGS: {
        Reason.CLIENT_NOT_IN_SCOPE: 55,
        Reason.NOT_COMPLETED: 20,
        Reason.AUTOMATION_OFF: 18,
        Reason.STATUS_OFF: 5,
        Reason.APPLY_TO_NONE: 2,
    },
    Tenant.ApplyTo.ALL: {
        Reason.NOT_COMPLETED: 45,
        Reason.AUTOMATION_OFF: 40,
        Reason.STATUS_OFF: 10,
        Reason.APPLY_TO_NONE: 5,
    },
}
# Office hours, in UTC (the seeded MSPs are all in one time zone).
HOUR_WEIGHTS = [0.05] * 7 + [0.5, 1.0, 1.0, 1.0, 1.0, 0.7, 1.0, 1.0, 1.0, 1.0, 0.6, 0.3]
HOUR_WEIGHTS += [0.15, 0.15, 0.15, 0.05, 0.05]
RECENT = dt.timedelta(days=3)

VENDOR_LABEL = {"connectwise": "ConnectWise", "autotask": "Autotask", "halopsa": "HaloPSA"}


def _failure(vendor: str, rnd: random.Random, ticket: str, email: str) -> tuple[str, str]:
    """(error class, message) of an entry that failed for good, in the PSA's words."""
    label = VENDOR_LABEL[vendor]
    kind = rnd.choices(["permanent", "unresolved", "not_found", "retryable"], [35, 35, 10, 20])[0]
    if kind == "permanent":
        message = {
            "connectwise": f"ConnectWise refused the request: chargeToId: Ticket {ticket} is "
            "closed and cannot accept time entries",
            "autotask": "Autotask refused the request (HTTP 500). “The TicketID is for a ticket "
            "that is Complete.”",
            "halopsa": f"HaloPSA refused the request (HTTP 400): Ticket {ticket} is closed.",
        }[vendor]
    elif kind == "unresolved":
        message = (
            f"No active {label} user has the e-mail {email}: set that e-mail on the user in "
            f"{label}, or add a PSA user mapping for it."
        )
    elif kind == "not_found":
        message = f"{label} found no such record (404): ticket {ticket} does not exist"
    else:
        message = f"Gave up after 10 attempts: {label} is having trouble (503)"
    return kind, message


def _transient(vendor: str, rnd: random.Random) -> tuple[str, str, bool]:
    """(error class, message, needs look-up) of an entry waiting to be tried again."""
    label = VENDOR_LABEL[vendor]
    if rnd.random() < 0.25:
        return (
            "unknown_outcome",
            f"{label} failed while storing the entry (502); it may exist.",
            True,
        )
    if rnd.random() < 0.5:
        return "retryable", f"{label} asked us to slow down (429).", False
    return "retryable", f"{label} is having trouble (503)", False


@dataclass
class HistoryCounts:
    runs: int = 0
    entries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class HistoryPlan:
    entries: int
    days: int
    batch: int
    now: dt.datetime
    largest_share: float = 0.0


def _day_counts(total: int, start: dt.date, days: int) -> list[int]:
    """Runs per day: weekends quiet, slow growth; sums exactly to ``total``."""
    weights = []
    for d in range(days):
        day = start + dt.timedelta(days=d)
        weekend = day.weekday() >= 5
        weights.append((0.18 if weekend else 1.0) * (0.7 + 0.3 * d / max(1, days - 1)))
    scale = total / sum(weights)
    counts, carried, given = [], 0.0, 0
    for w in weights:
        carried += w * scale
        n = round(carried) - given
        counts.append(n)
        given += n
    return counts


RUN_FIELDS = [
    "id",
    "tenant",
    "run_id",
    "reference",
    "automation",
    "client",
    "ticket_id",
    "started_by",
    "started_at",
    "completed_at",
    "outcome",
    "summary",
    "content_hash",
    "received_at",
    "decision",
    "skip_reason",
]
ENTRY_FIELDS = [
    "id",
    "tenant",
    "run",
    "status",
    "log_as",
    "minutes",
    "start",
    "end",
    "notes",
    "connection",
    "psa_user_ref",
    "psa_user_name",
    "psa_entry_id",
    "psa_ticket_url",
    "attempts",
    "counted_attempts",
    "next_attempt_at",
    "enqueued_at",
    "lease_expires_at",
    "needs_lookup",
    "waiting_for",
    "error_class",
    "error",
    "created_at",
    "updated_at",
    "posted_at",
    "client",
    "automation",
]


class _Generator:
    def __init__(self, tenants: list[SeedTenant], plan: HistoryPlan, rnd: random.Random):
        self.plan = plan
        self.rnd = rnd
        # A few large MSPs and many small ones; the first one is the largest, with
        # ``largest_share`` of the runs (the CSV export benchmark needs 100,000 entries of one
        # tenant, as the API exports one tenant's history).
        weights = [rnd.lognormvariate(0, 1.0) for _ in tenants]
        if len(tenants) > 1 and 0 < plan.largest_share < 1:
            weights[0] = plan.largest_share / (1 - plan.largest_share) * sum(weights[1:])
        self.tenants = Weighted()
        for s, weight in zip(tenants, weights, strict=True):
            self.tenants.add(s, weight)
        self.skip_pools = {s.id: self._skip_pool(s) for s in tenants}
        self.total_runs = math.ceil(plan.entries / LOGGED_SHARE)
        self.runs_left = self.total_runs
        self.entries_left = plan.entries
        self.counts = HistoryCounts()

    @staticmethod
    def _skip_pool(s: SeedTenant) -> Weighted:
        pool = Weighted()
        for reason, weight in SKIP_WEIGHTS[Tenant.ApplyTo(s.apply_to)].items():
            if reason == Reason.CLIENT_NOT_IN_SCOPE and not s.out_of_scope_clients:
                continue
            if reason == Reason.AUTOMATION_OFF and not s.off_automations:
                continue
            pool.add(reason, weight)
        return pool

    def run_and_entry(
        self, completed_at: dt.datetime, day_index: int
    ) -> tuple[tuple, tuple | None]:
        rnd, now = self.rnd, self.plan.now
        s: SeedTenant = self.tenants.pick(rnd)
        # Sampling without replacement: exactly ``entries`` of the runs are logged.
        log = rnd.random() * self.runs_left < self.entries_left
        self.runs_left -= 1
        reason = ""
        if log:
            self.entries_left -= 1
            client = s.in_scope_clients.pick(rnd) if s.in_scope_clients else None
            automation: SeedAutomation = s.logged_automations.pick(rnd)
        else:
            reason = self.skip_pools[s.id].pick(rnd)
            clients = (
                s.out_of_scope_clients
                if reason == Reason.CLIENT_NOT_IN_SCOPE or not s.in_scope_clients
                else s.in_scope_clients
            )
            client = clients.pick(rnd)
            automations = s.off_automations if reason == Reason.AUTOMATION_OFF else None
            automation = (automations or s.logged_automations).pick(rnd)
        if client is None:  # a "Based on Tag" tenant without tagged clients logs nothing
            client = s.out_of_scope_clients.pick(rnd)
        email, starter_ref, starter_name = s.users.pick(rnd)
        duration = max(20, int(automation.typical_seconds * rnd.lognormvariate(0, 0.5)))
        started_at = completed_at - dt.timedelta(seconds=duration)
        delay = rnd.uniform(0.2, 15) if rnd.random() > 0.01 else rnd.uniform(60, 7200)
        received_at = min(completed_at + dt.timedelta(seconds=delay), now)
        ticket = str(s.ticket_base + day_index * 40 + rnd.randrange(80))
        domain = s.client_domains[client]
        summary = automation.summary.format(
            person=f"{rnd.choice(('anna', 'ben', 'carla', 'dev', 'eli'))}@{domain}",
            host=f"{domain.split('.')[0][:8].upper()}-SRV{rnd.randrange(1, 40):02d}",
            n=rnd.randrange(2, 40),
        )
        # Identifiers from the system's randomness, not ``rnd``: a second seed with the same
        # --random-seed must not reuse them (references are unique across tenants).
        run = (
            s.id,
            str(uuid.uuid4()),
            uuid.uuid4(),
            automation.id,
            client,
            ticket,
            email,
            started_at,
            completed_at,
            "failed" if reason == Reason.NOT_COMPLETED else "completed",
            summary,
            f"{rnd.getrandbits(256):064x}",
            received_at,
            "log" if log else "skip",
            str(reason),  # plain strings: psycopg's COPY adapts by type
        )
        self.counts.runs += 1
        if not log:
            self.counts.skip_reasons[reason] += 1
            return run, None
        entry = self._entry(
            s, automation, run, duration, starter=(email, starter_ref, starter_name)
        )
        self.counts.entries += 1
        self.counts.statuses[entry[2]] += 1
        return run, entry

    def _entry(
        self,
        s: SeedTenant,
        automation: SeedAutomation,
        run: tuple,
        duration: int,
        *,
        starter: tuple[str, str, str],
    ) -> tuple:
        rnd, now = self.rnd, self.plan.now
        email, ticket, started_at, summary, received_at = run[6], run[5], run[7], run[10], run[12]
        minutes = automation.minutes or max(1, math.ceil(duration / 60))
        created_at = received_at
        age = now - created_at
        if s.log_as == Tenant.LogAs.SPECIFIED and s.specified:
            ref, name = s.specified
        elif s.log_as == Tenant.LogAs.ASSIGNEE:
            _, ref, name = s.users.pick(rnd)  # the ticket's owner, looked up when posting
        else:
            _, ref, name = starter
        status = Status.POSTED
        if s.paused_at is not None and created_at >= s.paused_at:
            status = Status.HELD
        elif age < RECENT:
            status = rnd.choices(
                [Status.POSTED, Status.RETRY_WAIT, Status.FAILED, Status.PENDING],
                [95.5, 2.5, 1.2, 0.8],
            )[0]
            if status == Status.PENDING and age > dt.timedelta(minutes=10):
                status = Status.POSTED  # the sweep would have sent anything older
        elif rnd.random() < 0.014:
            status = Status.FAILED
        error_class = error = psa_entry_id = ""
        attempts, needs_lookup = 1, False
        posted_at = next_attempt_at = enqueued_at = None
        updated_at = created_at + dt.timedelta(seconds=rnd.uniform(1, 20))
        if status == Status.POSTED:
            retried = rnd.random() < 0.03
            attempts = rnd.randint(2, 4) if retried else 1
            wait = rnd.uniform(60, 3600) if retried else rnd.uniform(0.5, 20)
            posted_at = min(created_at + dt.timedelta(seconds=wait), now)
            updated_at = posted_at
            s.next_psa_entry_id += rnd.randrange(1, 4)  # others log time in the PSA too
            psa_entry_id = str(s.next_psa_entry_id)
        elif status == Status.FAILED:
            error_class, error = _failure(s.vendor, rnd, ticket, email)
            attempts = 10 if error_class == "retryable" else 1
            if error_class == "unresolved" and s.log_as == Tenant.LogAs.STARTER:
                ref = name = ""
        elif status == Status.RETRY_WAIT:
            error_class, error, needs_lookup = _transient(s.vendor, rnd)
            attempts = rnd.randint(1, 5)
            next_attempt_at = now + dt.timedelta(seconds=rnd.uniform(30, 3600))
        elif status == Status.HELD:
            error_class = "configuration"
            error = f"The connection is paused: {s.pause_reason}"
        else:  # pending: queued, not tried yet
            attempts = 0
            next_attempt_at = enqueued_at = created_at
        updated_at = min(updated_at, now)
        start = started_at
        end = start + dt.timedelta(minutes=minutes)
        if s.vendor == "connectwise" and posted_at is not None and end > posted_at:
            # ConnectWise refuses entries in the future: the window is moved back to end at
            # the moment of posting, keeping its length.
            end = posted_at
            start = end - dt.timedelta(minutes=minutes)
        notes = (
            f"{summary}\n\nAutomation: {automation.name}\nStarted by: {email}"
            f"\nLogged automatically by piadesk. Reference: piadesk-run:{run[2]}"
        )
        return (
            s.id,
            None,  # the run's id, filled in when the batch's ids are known
            str(status),
            str(s.log_as),
            minutes,
            start,
            end,
            notes,
            s.connection_id,
            ref,
            name,
            psa_entry_id,
            "",  # psa_ticket_url: the seed's connections are not real PSAs
            attempts,
            attempts,
            next_attempt_at,
            enqueued_at,
            None,
            needs_lookup,
            "",  # waiting_for
            error_class,
            error,
            created_at,
            updated_at,
            posted_at,
            run[4],  # the run's client
            run[3],  # and automation, copied onto the entry
        )


def history_seed(
    *,
    tenants: list[SeedTenant],
    plan: HistoryPlan,
    rnd: random.Random,
    progress: Callable[[HistoryCounts, int], None],
) -> HistoryCounts:
    """Write the runs and entries, ``plan.batch`` runs per transaction."""
    gen = _Generator(tenants, plan, rnd)
    runs_writer = RowWriter(AutomationRun, RUN_FIELDS)
    entries_writer = RowWriter(TimeEntry, ENTRY_FIELDS)
    first_day = (plan.now - dt.timedelta(days=plan.days - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    hours = list(range(24))
    runs: list[tuple] = []
    entries: list[tuple[int, tuple]] = []  # (index of the run in the batch, entry row)

    def flush() -> None:
        run_ids = runs_writer.allocate_ids(len(runs))
        entry_ids = entries_writer.allocate_ids(len(entries))
        with transaction.atomic():
            runs_writer.write((pk, *row) for pk, row in zip(run_ids, runs, strict=True))
            entries_writer.write(
                (pk, row[0], run_ids[i], *row[2:])
                for pk, (i, row) in zip(entry_ids, entries, strict=True)
            )
        runs.clear()
        entries.clear()
        progress(gen.counts, gen.total_runs)

    counts = _day_counts(gen.total_runs, first_day.date(), plan.days)
    for day_index, n in enumerate(counts):
        day = first_day + dt.timedelta(days=day_index)
        # The last day only has the hours up to now.
        room = min(86400.0, (plan.now - day).total_seconds() - 1)
        offsets = sorted(
            (h * 3600 + rnd.random() * 3600) * room / 86400
            for h in rnd.choices(hours, weights=HOUR_WEIGHTS, k=n)
        )
        for offset in offsets:
            run, entry = gen.run_and_entry(day + dt.timedelta(seconds=offset), day_index)
            if entry is not None:
                entries.append((len(runs), entry))
            runs.append(run)
            if len(runs) >= plan.batch:
                flush()
    if runs:
        flush()
    return gen.counts
