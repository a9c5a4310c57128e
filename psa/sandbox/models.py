"""What the PSA sandbox knows: fake PSA accounts, their members and tickets, and the time entries
piadesk posted to them.

The models are vendor-neutral (a ``vendor`` column on each) so that Autotask and HaloPSA
stand-ins can live beside ConnectWise; vendor-specific switches go in ``SandboxAccount.options``.
Ids that the PSA API exposes (member id, ticket id) are explicit columns, unique per account,
as they would be in one PSA instance; time entry ids are the rows' own primary keys.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class Vendor(models.TextChoices):
    CONNECTWISE = "connectwise", "ConnectWise PSA"
    AUTOTASK = "autotask", "Autotask"
    HALOPSA = "halopsa", "HaloPSA"


class SandboxAccount(models.Model):
    """One fake PSA instance (a ConnectWise company) and its API credentials.

    The keys are stored in plain text on purpose: this is fake test data for a local stand-in
    that only exists when ``PIADESK_SANDBOX`` is on. Never put real credentials here.
    """

    vendor = models.CharField(max_length=20, choices=Vendor.choices)
    company_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200, blank=True, help_text="Shown as CompanyName.")
    public_key = models.CharField(max_length=200)
    private_key = models.CharField(max_length=200)
    codebase = models.CharField(max_length=50, default="v2025_1/")
    # Free vendor switches, e.g. {"clock_skew_seconds": 90} (ConnectWise: the sandbox's clock
    # runs that far ahead of the real one when it judges "entries in the future").
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "company_id"], name="sandbox_account_vendor_company"
            )
        ]
        ordering = ["vendor", "company_id"]

    def __str__(self) -> str:
        return f"{self.get_vendor_display()} {self.company_id}"


class SandboxMember(models.Model):
    """A PSA user who can be charged time (ConnectWise member, Autotask resource, Halo agent)."""

    vendor = models.CharField(max_length=20, choices=Vendor.choices)
    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="members")
    member_id = models.PositiveIntegerField()
    identifier = models.CharField(max_length=100)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    primary_email = models.CharField(max_length=200, blank=True)
    office_email = models.CharField(max_length=200, blank=True)
    inactive = models.BooleanField(default=False)
    # Vendor-specific facts, e.g. Autotask {"default_role_id": 8, "license": "Full"}.
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "member_id"], name="sandbox_member_account_id"
            ),
            models.UniqueConstraint(
                fields=["account", "identifier"], name="sandbox_member_account_identifier"
            ),
        ]
        ordering = ["account", "member_id"]

    def __str__(self) -> str:
        return self.identifier

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.identifier


class SandboxTicket(models.Model):
    vendor = models.CharField(max_length=20, choices=Vendor.choices)
    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="tickets")
    ticket_id = models.PositiveIntegerField()
    summary = models.CharField(max_length=200)
    owner = models.ForeignKey(
        SandboxMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # ConnectWise gives the ticket's resources as one comma-separated string of identifiers.
    resources = models.CharField(max_length=500, blank=True)
    # Vendor-specific facts, e.g. Autotask {"assigned_role_id": 8}.
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "ticket_id"], name="sandbox_ticket_account_id"
            )
        ]
        ordering = ["account", "ticket_id"]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.summary}"


class SandboxTimeEntry(models.Model):
    """A time entry as the sandbox accepted it; ``id`` is the id the PSA API answers with."""

    vendor = models.CharField(max_length=20, choices=Vendor.choices)
    account = models.ForeignKey(
        SandboxAccount, on_delete=models.CASCADE, related_name="time_entries"
    )
    ticket = models.ForeignKey(SandboxTicket, on_delete=models.CASCADE, related_name="time_entries")
    member = models.ForeignKey(SandboxMember, on_delete=models.PROTECT, related_name="time_entries")
    time_start = models.DateTimeField()
    time_end = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    billable_option = models.CharField(max_length=20, blank=True)
    payload = models.JSONField(default=dict, help_text="The request body exactly as received.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["account", "ticket"], name="sandbox_entry_acct_ticket")]
        ordering = ["id"]
        verbose_name_plural = "sandbox time entries"

    def __str__(self) -> str:
        return f"Time entry {self.pk} on {self.ticket}"

    @property
    def actual_hours(self) -> Decimal | None:
        """Decimal hours, two places, as ConnectWise reports ``actualHours``."""
        if self.time_end is None:
            return None
        seconds = Decimal((self.time_end - self.time_start).total_seconds())
        return (seconds / 3600).quantize(Decimal("0.01"))


class SandboxFaults(models.Model):
    """Faults the sandbox injects for one vendor (see ``psa/sandbox/faults.py``).

    Rates are probabilities per request, from 0 to 1. All zero by default: a fault-free PSA.
    """

    vendor = models.CharField(max_length=20, choices=Vendor.choices, primary_key=True)
    # Before the request is handled (nothing stored):
    error_rate = models.FloatField(default=0, help_text="Answer 500/502/503 instead.")
    throttle_rate = models.FloatField(default=0, help_text="Answer 429 with Retry-After.")
    retry_after_seconds = models.PositiveIntegerField(default=2)
    timeout_rate = models.FloatField(default=0, help_text="Answer after timeout_seconds.")
    timeout_seconds = models.FloatField(default=10)
    latency_ms_min = models.PositiveIntegerField(default=0)
    latency_ms_max = models.PositiveIntegerField(default=0)
    # After an entry was stored (creates only): the client cannot know it landed.
    drop_after_store_rate = models.FloatField(
        default=0, help_text="Store the entry, then close the connection without answering."
    )
    error_after_store_rate = models.FloatField(
        default=0, help_text="Store the entry, then answer 502."
    )

    class Meta:
        verbose_name_plural = "sandbox faults"

    def __str__(self) -> str:
        return f"faults for {self.vendor}"
