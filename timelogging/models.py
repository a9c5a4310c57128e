"""piadesk's domain: tenants and their settings, what the automation service reports, and the
time entries posted to the PSA.

Every domain row belongs to a tenant (directly, by a ``tenant`` foreign key), so that scoping a
query to one tenant is always one filter. Write paths live in ``services.py``; nothing here
runs domain logic in ``save()`` or signals.
"""

from __future__ import annotations

import uuid
import zoneinfo
from functools import cache
from typing import Any

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager

from psa.base import ErrorClass
from psa.registry import backend_class

MAX_MINUTES = 24 * 60


@cache
def time_zone_names() -> tuple[str, ...]:
    """The IANA zone names this system knows (``zoneinfo``), sorted: a tenant's choices."""
    return tuple(sorted(zoneinfo.available_timezones()))


def default_time_zone() -> str:
    """A new tenant's zone: the site's (``TIME_ZONE``), read when the tenant is created."""
    return str(settings.TIME_ZONE)


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            f"“{value}” is not a time zone: choose one like America/New_York or Europe/London."
        )


class Tenant(models.Model):
    """One MSP, with its "Tenant Settings → Automated Time Logging" settings."""

    class ApplyTo(models.TextChoices):
        NONE = "none", "None"
        ALL = "all", "All Clients"
        TAGS = "tags", "Based on Tag"

    class LogAs(models.TextChoices):
        STARTER = "starter", "The user who started the automation"
        ASSIGNEE = "assignee", "The ticket assignee"
        SPECIFIED = "specified", "A specified PSA user"

    name = models.CharField(max_length=200, unique=True)
    time_logging_enabled = models.BooleanField(
        "status", default=False, help_text="When off, nothing is logged for anyone."
    )
    apply_to = models.CharField(max_length=10, choices=ApplyTo.choices, default=ApplyTo.NONE)
    # Annotated: the "+" related name leaves the type checker without a through model to infer.
    apply_tags: models.ManyToManyField[Tag, Any] = models.ManyToManyField(
        "Tag",
        blank=True,
        related_name="+",
        verbose_name="tags",
        help_text="With “Based on Tag”: a client is in scope when it carries any of these.",
    )
    log_as = models.CharField(
        "log time entries as", max_length=10, choices=LogAs.choices, default=LogAs.STARTER
    )
    specified_psa_user_ref = models.CharField(
        "specified PSA user",
        max_length=100,
        blank=True,
        help_text="The PSA's identifier of the user: ConnectWise member identifier, "
        "Autotask resource id or HaloPSA agent id.",
    )
    specified_psa_user_name = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="The tenant's pages, filters, reports and CSV exports show times in this zone "
        "(as its PSA does); the API answers in UTC.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Replaced by a new random value, in the same transaction, whenever anything an ingest
    # decides with changes: these settings, the "apply to" tags, a client (its name, its tags),
    # a tag deleted, an automation. Each web process keeps what its ingests read for a tenant
    # under the value it read, and reads the value again on every ingest
    # (services/ingest_cache.py): a change is seen by the next ingest of every process.
    config_version = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "tenant settings"
        verbose_name_plural = "tenant settings"

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class StaffProfile(models.Model):
    """Which tenant (MSP) a staff user or auditor belongs to. Users without a profile see no
    tenant's data in the admin unless they are superusers."""

    user = models.OneToOneField(
        "auth.User", on_delete=models.CASCADE, related_name="piadesk_profile"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="staff")

    class Meta:
        verbose_name = "staff member"

    def __str__(self) -> str:
        return f"{self.user} ({self.tenant})"


class TenantOwned(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT)

    class Meta:
        abstract = True


class Tag(TenantOwned):
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "tenant",
                Lower("name"),
                name="tag_unique_name_per_tenant",
                violation_error_message="This tenant already has a tag with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Client(TenantOwned):
    """A client of the MSP, as the automation service names it (``key``)."""

    key = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="clients")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "key"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="client_unique_key_per_tenant")
        ]

    def __str__(self) -> str:
        return self.name or self.key


class Automation(TenantOwned):
    """An automation package, with its time-per-automation rule."""

    key = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    log_time = models.BooleanField(
        default=True, help_text="Switch off to log no time for this automation."
    )
    minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_MINUTES)],
        help_text="Minutes to log per run. Empty: the run's real duration.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], name="automation_unique_key_per_tenant"
            ),
            models.CheckConstraint(
                condition=models.Q(minutes__isnull=True)
                | models.Q(minutes__gte=1, minutes__lte=MAX_MINUTES),
                name="automation_minutes_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.key


class PSAConnection(TenantOwned):
    """A tenant's PSA and its credentials. Exactly one is active per tenant.

    ``settings`` holds the vendor's non-secret fields (site, company id, ...); the secret ones
    are encrypted together in ``secrets_encrypted`` (see ``crypto.py``) and never displayed.
    """

    class TestResult(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        # A failed test, then an entry was posted: the PSA works again, whatever the test said.
        POSTED_SINCE = "posted_since", "Failed, then an entry was posted"

    # No model choices: vendors come from psa.registry (forms take their choices from it), so
    # adding a vendor needs no migration.
    vendor = models.CharField(max_length=20)
    name = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    settings = models.JSONField(default=dict, blank=True)
    secrets_encrypted = models.TextField(blank=True, editable=False)
    # Paused by a configuration failure (credentials, permissions, proxy time entry) or by
    # staff: its entries are held until it is resumed.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    pause_reason = models.TextField(blank=True, editable=False)
    # The last "Test connection" of the stored settings (never of values typed and not
    # saved): the state shown to staff says "Last test failed …" until a later test passes or
    # an entry is posted (services.connections.connection_test_record).
    last_test_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_test_result = models.CharField(
        max_length=20, blank=True, editable=False, choices=TestResult.choices
    )
    last_test_message = models.TextField(blank=True, editable=False)
    # The request budget shared by every worker posting for this connection (None: the
    # vendor's default, see psa backends' default_requests_per_hour), and how many entries may
    # be in flight at once (Autotask allows 3 concurrent requests per endpoint).
    requests_per_hour = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(60)],
        help_text="PSA requests piadesk may make per hour for this connection. "
        "Empty: the vendor's default.",
    )
    max_concurrency = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Entries posted at the same time for this connection.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "PSA connection"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(is_active=True),
                name="one_active_psa_connection_per_tenant",
                violation_error_message="This tenant already has an active PSA connection.",
            )
        ]

    def __str__(self) -> str:
        return self.name or f"{self.vendor_label} ({self.tenant})"

    @property
    def vendor_label(self) -> str:
        try:
            return backend_class(self.vendor).label
        except ValueError:
            return self.vendor


class PSAUserMapping(TenantOwned):
    """Who an e-mail is in the PSA: resolved automatically and cached, or set by staff."""

    class Source(models.TextChoices):
        RESOLVED = "resolved", "Resolved by e-mail"
        MANUAL = "manual", "Set by staff"

    connection = models.ForeignKey(PSAConnection, on_delete=models.CASCADE)
    email = models.EmailField(max_length=254)
    psa_user_ref = models.CharField("PSA user", max_length=100)
    psa_user_name = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.RESOLVED)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "PSA user mapping"
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "email"], name="psa_user_mapping_unique_email"
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.psa_user_name or self.psa_user_ref}"


class TenantAPIKeyManager(APIKeyManager):
    def assign_key(self, obj: AbstractAPIKey) -> str:
        key = super().assign_key(obj)
        # The row's id is its public prefix, not the library's "prefix.hash": the id is what
        # admin URLs, the admin's log and the configuration history name the key by, and the
        # hash is nobody's business (README: "the hash is not kept" in the history).
        obj.id = obj.prefix
        return key


class TenantAPIKey(AbstractAPIKey):
    """The automation service's key for one tenant. Stored hashed; shown once on creation.

    A read-only key (for auditors' tools) may read the history API but not report runs.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    # The library declares objects as a ClassVar of its own manager; ours only adds assign_key.
    objects = TenantAPIKeyManager()  # type: ignore[misc]  # see the comment above
    read_only = models.BooleanField(
        default=False, help_text="Read the history only; cannot report runs."
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


class AutomationRun(TenantOwned):
    """A finished automation run as reported by the automation service, and the decision."""

    class Outcome(models.TextChoices):
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Decision(models.TextChoices):
        LOG = "log", "Log"
        SKIP = "skip", "Skip"

    class SkipReason(models.TextChoices):
        STATUS_OFF = "status_off", "Automated time logging is off for the tenant"
        APPLY_TO_NONE = "apply_to_none", "“Apply to” is None"
        CLIENT_NOT_IN_SCOPE = "client_not_in_scope", "The client carries none of the chosen tags"
        AUTOMATION_OFF = "automation_off", "Time logging is switched off for this automation"
        NOT_COMPLETED = "not_completed", "The run did not complete"

    run_id = models.CharField(max_length=200)
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No single-column indexes: the (client|automation, -received_at, -id) indexes below lead
    # with them and serve the foreign keys' look-ups too.
    automation = models.ForeignKey(
        Automation, on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    ticket_id = models.CharField(max_length=64)
    started_by = models.EmailField(max_length=254)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    summary = models.TextField(blank=True)
    # SHA-256 of the canonical request content: a retry with the same run_id must match it.
    content_hash = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)
    decision = models.CharField(max_length=4, choices=Decision.choices)
    skip_reason = models.CharField(max_length=30, choices=SkipReason.choices, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "run_id"], name="run_unique_per_tenant")
        ]
        # Each index serves a history page's default order, a filter, an exact search or a
        # report, checked with EXPLAIN on a million rows (README, "Benchmarks"). None is
        # speculative: every one costs each ingest a little.
        indexes = [
            # A tenant's history newest first: tenant staff, the API's cursor pages, the admin
            # filtered by tenant. decision and skip_reason ride along (after the unique id,
            # they change no order) so that the reports count runs from the index alone.
            models.Index(
                fields=["tenant", "-received_at", "-id", "decision", "skip_reason"],
                name="run_tenant_recent",
            ),
            # Superusers' and auditors' list across tenants, newest first: the admin's first
            # page reads 100 index entries instead of sorting a million rows.
            models.Index(fields=["-received_at", "-id"], name="run_recent"),
            # The client and automation filters, newest first (a busy client has thousands of
            # runs: walked in order and counted from the index, not sorted).
            models.Index(fields=["client", "-received_at", "-id"], name="run_client_recent"),
            models.Index(
                fields=["automation", "-received_at", "-id"], name="run_automation_recent"
            ),
            # The skip reason filter: rare reasons would otherwise be counted by reading the
            # whole table. Logged runs (85 %) have none and stay out of it.
            models.Index(
                fields=["skip_reason", "-received_at", "-id"],
                name="run_skip_reason",
                condition=~models.Q(skip_reason=""),
            ),
            # Exact search by run id or ticket across tenants (the unique (tenant, run_id)
            # index needs the tenant first).
            models.Index(fields=["run_id"], name="run_run_id"),
            models.Index(fields=["ticket_id"], name="run_ticket_id"),
            # Search by the starter's e-mail (stored lower-cased: an exact match).
            models.Index(fields=["started_by"], name="run_started_by"),
        ]

    def __str__(self) -> str:
        return self.run_id

    @property
    def reference_text(self) -> str:
        """The stable reference written into the entry's notes (and searched for later)."""
        return f"piadesk-run:{self.reference}"

    @property
    def reason(self) -> str:
        if self.decision == self.Decision.LOG:
            return "Logged: time logging applies to this client and automation."
        return self.get_skip_reason_display()


class TimeEntry(TenantOwned):
    """The time entry piadesk logs (or logged) in the PSA for one run."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        POSTING = "posting", "Posting"
        RETRY_WAIT = "retry_wait", "Waiting to retry"
        POSTED = "posted", "Posted"
        FAILED = "failed", "Failed (needs a person)"
        HELD = "held", "Held (connection paused)"
        DISCARDED = "discarded", "Discarded (never posted)"

    class WaitReason(models.TextChoices):
        """Why an entry waits without an attempt (labels complete "waiting for …")."""

        BUDGET = "budget", "the request budget"
        CONCURRENCY = "concurrency", "a free posting slot on the connection"
        RETRY_AFTER = "retry_after", "the PSA's Retry-After"

    # Statuses the sweep and the worker may act on; the others wait for a person or are done.
    OPEN_STATUSES = (Status.PENDING, Status.RETRY_WAIT)

    run = models.OneToOneField(AutomationRun, on_delete=models.PROTECT, related_name="entry")
    # The run's client and automation, copied onto the entry when it is created (a run's
    # never change): the reports sum a year of a large tenant per client or automation from
    # the ``entry_report`` index alone, without a look-up of each entry's run. Empty only for
    # entries written by a version before 0015 while it was being replaced; the sweep fills
    # them in (services/entry_catalog.py).
    client = models.ForeignKey(
        Client, null=True, on_delete=models.PROTECT, related_name="+", db_index=False,
        editable=False,
    )
    automation = models.ForeignKey(
        Automation, null=True, on_delete=models.PROTECT, related_name="+", db_index=False,
        editable=False,
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    log_as = models.CharField(max_length=10, choices=Tenant.LogAs.choices)
    minutes = models.PositiveSmallIntegerField()
    # The window: decided from the run, then fitted to the vendor's rules when posted.
    start = models.DateTimeField()
    end = models.DateTimeField()
    notes = models.TextField()
    connection = models.ForeignKey(
        PSAConnection, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    psa_user_ref = models.CharField("PSA user", max_length=100, blank=True)
    psa_user_name = models.CharField(max_length=200, blank=True)
    psa_entry_id = models.CharField("PSA entry id", max_length=64, blank=True)
    # Where staff open the ticket in the PSA's web app, as the backend said when the entry was
    # posted (PSABackend.ticket_url; Autotask's needs the zone's web address, known then).
    psa_ticket_url = models.URLField("PSA ticket link", max_length=500, blank=True, editable=False)
    # Delivery state, owned by piadesk (see services/delivery.py). ``attempts`` counts the
    # tries that may have reached the PSA (and numbers the PostAttempt rows); waits (the
    # request budget, the connection's concurrency, a PSA's Retry-After) are not attempts:
    # they give the try back and are shown by ``waiting_for`` until ``next_attempt_at``.
    # ``counted_attempts`` counts towards the cap; staff retrying an entry start it afresh.
    attempts = models.PositiveIntegerField(default=0)
    counted_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The last attempt may have reached the PSA (timeout after sending, dropped connection,
    # 5xx after send, worker killed mid-post): look for the reference before posting again.
    needs_lookup = models.BooleanField(default=False)
    waiting_for = models.CharField(max_length=12, choices=WaitReason.choices, blank=True)
    error_class = models.CharField(max_length=20, choices=ErrorClass.choices, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    posted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "time entries"
        ordering = ["-created_at", "-id"]
        # Staff may send a failed entry back to the queue; the history itself stays read-only
        # for everyone (no change permission is needed, nor given).
        permissions = [("retry_timeentry", "Can operate time entries (retry, re-decide, discard)")]
        indexes = [
            # A tenant's history, newest first (tenant staff, API cursor, admin by tenant).
            models.Index(fields=["tenant", "-created_at", "-id"]),
            # The sweep: open entries that are due.
            models.Index(fields=["status", "next_attempt_at"], name="entry_due"),
            # The claim's count of a connection's entries in flight (posting): a handful of
            # rows. Without it PostgreSQL also reads the connection's foreign key index, every
            # entry the connection ever claimed, so a claim cost more the longer the drain.
            models.Index(
                fields=["connection", "lease_expires_at"],
                name="entry_in_flight",
                condition=models.Q(status="posting"),
            ),
            # The queue page (oldest waiting) and the admin's status filter.
            models.Index(fields=["status", "created_at"], name="entry_status_age"),
            # Superusers' and auditors' list across tenants, newest first.
            models.Index(fields=["-created_at", "-id"], name="entry_recent"),
            # Exact search by the PSA's entry id across tenants.
            models.Index(fields=["psa_entry_id"], name="entry_psa_entry_id"),
            # The PSA user filter, newest first (a user's entries are a few thousand among
            # millions: without it the list walks the date index filtering row by row).
            models.Index(fields=["psa_user_ref", "-created_at", "-id"], name="entry_psa_user"),
            # The error class filter: only entries that failed carry one (a few percent), so
            # the index stays small; rare classes would otherwise scan the table.
            models.Index(
                fields=["error_class", "-created_at", "-id"],
                name="entry_error_class",
                condition=~models.Q(error_class=""),
            ),
            # Reports: a tenant's posted entries by the day the work was done (the entry's
            # start, as the PSA shows it), with every column the sums read (client,
            # automation and PSA user), so that a year of a large tenant is summed from the
            # index alone: no heap rows, no join to the runs.
            models.Index(
                fields=[
                    "tenant", "start", "minutes", "client", "automation", "psa_user_ref",
                    "psa_user_name",
                ],
                name="entry_report",
                condition=models.Q(status="posted"),
            ),
            # The client and automation filters, newest first (a busy client has thousands of
            # entries among a tenant's hundred thousand: walked in order, not joined to the
            # runs and sorted). They also serve the foreign keys' PROTECT checks.
            models.Index(fields=["client", "-created_at", "-id"], name="entry_client_recent"),
            models.Index(
                fields=["automation", "-created_at", "-id"], name="entry_automation_recent"
            ),
            # The sweep finds entries written without their client and automation (by the
            # previous version during an upgrade): none once filled in, so an empty index.
            models.Index(
                fields=["id"], name="entry_catalog_missing", condition=models.Q(client=None)
            ),
            # Reports: the entries not in the PSA (waiting, held, failed, discarded) by the day
            # the work was done; a few percent of the entries, so a small index.
            models.Index(
                fields=["tenant", "start", "status", "minutes"],
                name="entry_not_posted",
                condition=~models.Q(status="posted"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.minutes} min on ticket {self.run.ticket_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.client_id is None and self.run_id is not None:
            # Every way of creating an entry copies the run's client and automation (the run
            # is at hand wherever an entry is made: no query).
            self.client_id = self.run.client_id
            self.automation_id = self.run.automation_id
        super().save(*args, **kwargs)

    @property
    def wait_text(self) -> str:
        """ "waiting for the request budget until 10:42:00 EST", or "" when not waiting."""
        if not self.waiting_for or self.status not in self.OPEN_STATUSES:
            return ""
        label = self.WaitReason(self.waiting_for).label
        # In the zone of the page showing it (the tenant's, see admin/site.py), named.
        until = (
            f" until {timezone.localtime(self.next_attempt_at):%H:%M:%S %Z}"
            if self.next_attempt_at
            else ""
        )
        return f"waiting for {label}{until}"


class RequestBudget(models.Model):
    """Requests made to one PSA connection in the current minute, shared by every worker."""

    connection = models.OneToOneField(
        PSAConnection, on_delete=models.CASCADE, primary_key=True, related_name="budget"
    )
    window_start = models.DateTimeField()
    used = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.used} requests since {self.window_start:%H:%M}"


class ReportMonth(models.Model):
    """A closed month of one tenant's report, summed once (PostgreSQL only).

    The 12-month report of a large tenant summed a year of posted entries three times (per
    client, automation and PSA user) and a year of runs once at every view. A month that has
    ended changes rarely (an entry started in it and posted later, a run re-decided), so its
    sums are kept here (``ReportMonthFigure``) and read back; the month in progress, and any
    part of the range that is not a whole closed month, are still summed from the entries.

    A month is bucketed in one time zone (the report's), so ``starts_at``/``ends_at`` are its
    window as instants. Database triggers mark a month ``stale`` when a posted entry or a run
    in its window is written (``services/report_months.py`` explains why that cannot miss a
    write); the next report that needs it sums it again. A cache: rows may be deleted at any
    time and are rebuilt on demand.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    time_zone = models.CharField(max_length=64)
    month = models.DateField()  # the 1st, in ``time_zone``
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    stale = models.BooleanField(default=False)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "time_zone", "month"], name="report_month_unique"
            )
        ]
        # The triggers' look-up: a tenant's months whose window holds an instant.
        indexes = [models.Index(fields=["tenant", "starts_at"], name="report_month_window")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.month:%Y-%m} ({self.time_zone})"


class ReportMonthFigure(models.Model):
    """One sum of a ``ReportMonth``: the minutes and entries posted for a client, automation
    or PSA user, or the runs of one decision and skip reason."""

    class Kind(models.TextChoices):
        CLIENT = "client"
        AUTOMATION = "automation"
        PSA_USER = "psa_user"
        DECISION = "decision"

    report_month = models.ForeignKey(ReportMonth, on_delete=models.CASCADE, related_name="figures")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The client's or automation's id, the PSA user's identifier, or the decision.
    key = models.CharField(max_length=100)
    # The PSA user's name (the greatest in the month, as the live query), or the skip reason.
    label = models.CharField(max_length=200, blank=True)
    minutes = models.BigIntegerField(default=0)
    count = models.PositiveIntegerField()  # entries, or runs

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: {self.count}"


# The functional API, so that every error class is an outcome without a second list.
AttemptOutcome = models.TextChoices(  # type: ignore[call-overload]  # stubs type literal lists only
    "AttemptOutcome",
    [
        ("POSTED", ("posted", "Posted")),
        ("ADOPTED", ("adopted", "Adopted (found on the ticket after an unknown outcome)")),
        *((c.name, (c.value, c.label)) for c in ErrorClass),
    ],
)
AttemptOutcome.__doc__ = "What one attempt ended in: posted, adopted, or an error class."


class PostAttempt(TenantOwned):
    """One try at posting an entry that may have reached the PSA: when, how long, what the
    PSA answered. Waits are not attempts (``TimeEntry.waiting_for``)."""

    entry = models.ForeignKey(TimeEntry, on_delete=models.PROTECT, related_name="post_attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    exchanges = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["entry", "number"]
        constraints = [
            models.UniqueConstraint(fields=["entry", "number"], name="attempt_unique_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.get_outcome_display()}"


def tenant_id_of(instance: models.Model) -> int | None:
    """The tenant a configuration row belongs to: the tenant itself, or its ``tenant``."""
    if isinstance(instance, Tenant):
        return instance.pk
    return getattr(instance, "tenant_id", None)


class ConfigChangeManager(LogEntryManager):
    """auditlog's manager, stamping each entry with the tenant of the object changed."""

    def log_create(self, instance: models.Model, force_log: bool = False, **kwargs: object):
        kwargs.setdefault("tenant_id", tenant_id_of(instance))
        return super().log_create(instance, force_log=force_log, **kwargs)

    def log_m2m_changes(self, changed_queryset, instance, operation, field_name, **kwargs):
        kwargs.setdefault("tenant_id", tenant_id_of(instance))
        return super().log_m2m_changes(changed_queryset, instance, operation, field_name, **kwargs)


class ConfigChange(AbstractLogEntry):
    """One change to a tenant's configuration: who (``actor``; none means piadesk itself), when,
    which object, and each field from → to (``changes``). Written by django-auditlog (this is
    its ``AUDITLOG_LOGENTRY_MODEL``; what is recorded is set up in ``audit.py``), never edited.

    ``tenant`` is auditlog's entry plus the one column that makes a tenant's history one index
    range: staff and auditors only ever read ``WHERE tenant_id = theirs``.
    """

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # PROTECT, not auditlog's SET_NULL: deleting a user must not turn their changes into
    # "system" ones. Users who leave are deactivated.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        blank=True,
        null=True,
        related_name="+",
        verbose_name="user",
    )

    objects = ConfigChangeManager()

    class Meta(AbstractLogEntry.Meta):
        verbose_name = "configuration change"
        verbose_name_plural = "configuration history"
        ordering = ["-timestamp", "-id"]
        indexes = [
            # A tenant's history, newest first: the page staff and auditors see.
            models.Index(fields=["tenant", "-timestamp", "-id"], name="configchange_tenant"),
            # One object's history (auditlog indexes object_id alone, without the type).
            models.Index(fields=["content_type", "object_id"], name="configchange_object"),
        ]


class StaffNotice(TenantOwned):
    """One message to a tenant's staff about one event (timelogging/services/notices.py).

    ``key`` names the event (a connection's pause, a batch of failures, a delayed queue), so
    that the checks that find events may run again and again: the unique constraint makes each
    event one notice, sent once, however many entries it concerns.
    """

    class Kind(models.TextChoices):
        CONNECTION_PAUSED = "connection_paused", "PSA connection paused"
        ENTRIES_FAILED = "entries_failed", "Entries failed"
        QUEUE_DELAYED = "queue_delayed", "Queue delayed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=100)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    link = models.URLField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    emailed_to = models.PositiveIntegerField(default=0)
    webhook_at = models.DateTimeField(null=True, blank=True)
    webhook_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "key"], name="notice_once_per_event")
        ]

    def __str__(self) -> str:
        return self.subject


class NotificationWebhook(TenantOwned):
    """Where a tenant's notices are also posted: a Teams or Slack incoming webhook.

    The URL is a credential (whoever has it can post to the channel), so it is kept like PSA
    secrets: encrypted with PIADESK_ENCRYPTION_KEYS (``url_encrypted``), never displayed.
    """

    class Style(models.TextChoices):
        SLACK = "slack", "Slack (incoming webhook)"
        TEAMS = "teams", "Microsoft Teams (incoming webhook)"

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, related_name="notification_webhook"
    )
    style = models.CharField(max_length=10, choices=Style.choices, default=Style.TEAMS)
    url_encrypted = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "notification webhook"

    def __str__(self) -> str:
        return f"{self.get_style_display()} ({self.tenant})"
