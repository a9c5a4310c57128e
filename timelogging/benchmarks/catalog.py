"""The seeded tenants' catalogues: settings, tags, clients, automations, PSA connections and
users, written in bulk and kept in memory (ids and sampling weights) for the history that
follows (``history.py``).

Volumes are skewed as in real life: a few large MSPs and many small ones, a few busy clients
per MSP, "reset password" run far more often than "onboard a user".
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from bisect import bisect
from dataclasses import dataclass, field

from django.db import transaction

from timelogging.benchmarks.rows import RowWriter
from timelogging.models import (
    Automation,
    Client,
    PSAConnection,
    PSAUserMapping,
    Tag,
    Tenant,
)

COMPANY_WORDS = (
    "Contoso Fabrikam Northwind Tailspin Litware Adatum Proseware Wingtip Woodgrove Fourth "
    "Coffee Alpine Blue Yonder Lucerne Margie Trey Humongous Relecloud Southridge Wide World "
    "Graphic Design Bellows Cascade Datum Fineart Lamna Liberty Nod Olympia Tasmanian Vanarsdel "
    "Coho Consolidated Munson Adventure Works Lakeshore Greenfield Riverbend Summit Harbor"
).split()
COMPANY_SUFFIXES = ("Ltd", "GmbH", "Inc.", "LLC", "S.A.", "B.V.", "& Co", "Group", "Partners")
FIRST_NAMES = (
    "john jane alex sam maria lena omar priya chen lucas emma noah mia liam olivia ethan "
    "sofia mateo aisha yuki ingrid pavel nora ravi grace"
).split()
LAST_NAMES = (
    "doe smith nguyen garcia muller rossi kowalski jensen okafor tanaka silva dubois novak "
    "andersen cohen patel haddad larsen moreau fischer brown walker ito kaur"
).split()

# (name, typical real duration in seconds, what the summary says it did)
AUTOMATIONS = (
    ("Reset password", 240, "Reset the password of {person} and e-mailed the ticket."),
    ("Unlock account", 90, "Unlocked the account of {person}."),
    ("Reset MFA", 300, "Reset multi-factor authentication for {person}."),
    ("Onboard user", 1500, "Created the account, mailbox and licences for {person}."),
    ("Offboard user", 1200, "Disabled {person}, converted the mailbox and removed licences."),
    ("Clean up disk", 600, "Freed {n} GB on C: of {host} (temp files, update cache)."),
    ("Restart service", 120, "Restarted the Print Spooler on {host}."),
    ("Install software", 900, "Installed the requested application on {host}."),
    ("Patch server", 2400, "Installed {n} updates on {host} and rebooted."),
    ("Add to group", 60, "Added {person} to the requested security group."),
    ("Create mailbox", 420, "Created a shared mailbox and granted access to {person}."),
    ("Clear print queue", 75, "Cleared {n} stuck jobs from the print queue on {host}."),
    ("Renew certificate", 780, "Renewed the TLS certificate on {host}."),
    ("Map network drive", 150, "Mapped the department drive for {person}."),
    ("Backup check", 360, "Checked last night's backup of {host}: {n} jobs succeeded."),
)
VENDORS = (("connectwise", 0.65), ("autotask", 0.25), ("halopsa", 0.10))
TAG_NAMES = ("Time Logging", "Ad-hoc", "Managed")


@dataclass
class SeedAutomation:
    id: int
    name: str
    minutes: int | None
    typical_seconds: int
    summary: str


@dataclass
class Weighted:
    """Items and cumulative weights, for fast weighted picks (``bisect``)."""

    items: list = field(default_factory=list)
    cum: list[float] = field(default_factory=list)

    def add(self, item: object, weight: float) -> None:
        self.items.append(item)
        self.cum.append((self.cum[-1] if self.cum else 0.0) + weight)

    def pick(self, rnd: random.Random):
        return self.items[bisect(self.cum, rnd.random() * self.cum[-1])]

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass
class SeedTenant:
    id: int
    name: str
    slug: str
    vendor: str
    log_as: str
    apply_to: str
    connection_id: int
    paused_at: dt.datetime | None
    pause_reason: str
    specified: tuple[str, str] | None
    in_scope_clients: Weighted = field(default_factory=Weighted)
    out_of_scope_clients: Weighted = field(default_factory=Weighted)
    logged_automations: Weighted = field(default_factory=Weighted)
    off_automations: Weighted = field(default_factory=Weighted)
    users: Weighted = field(default_factory=Weighted)  # (email, ref, name)
    ticket_base: int = 0
    next_psa_entry_id: int = 0
    client_domains: dict[int, str] = field(default_factory=dict)


@dataclass
class CatalogSize:
    tenants: int
    clients_per_tenant: int
    automations_per_tenant: int
    users_per_tenant: int


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _psa_ref(vendor: str, first: str, last: str, n: int, taken: set[str]) -> str:
    # How each PSA names a user: ConnectWise member identifiers are short names, Autotask
    # resource ids and HaloPSA agent ids are numbers.
    if vendor == "connectwise":
        ref = f"{first[0]}{last}"
        return ref if ref not in taken else f"{ref}{n}"
    if vendor == "autotask":
        return str(29682800 + n)
    return str(2 + n)


def _connection_settings(vendor: str, slug: str) -> dict[str, object]:
    if vendor == "connectwise":
        return {
            "site_url": f"https://{slug}.connectwise.example.invalid",
            "company_id": slug[:20],
            "public_key": "seeded",
        }
    if vendor == "autotask":
        return {"api_username": f"piadesk@{slug}.example", "integration_code": "SEEDED"}
    return {"resource_url": f"https://{slug}.halopsa.example.invalid/api", "client_id": "seeded"}


PAUSE_REASONS = {
    "connectwise": "ConnectWise refused access (403): You do not have security permission to "
    "perform this action. The API member's security role needs Time Entry (add, inquire), "
    "Service Ticket (inquire) and System Members (inquire).",
    "autotask": "Autotask refused to log time for another resource: “The logged in Resource "
    "does not have the adequate permissions to create this entity type.” Enable Proxy Time "
    "Entry for administrators (Admin → Features & Settings → Application-wide (Shared) "
    "Features → System Settings → Timesheets → Proxy Time Entry).",
    "halopsa": "HaloPSA rejected the client credentials (401): check the client id and secret.",
}


@transaction.atomic
def catalog_seed(
    *, prefix: str, size: CatalogSize, start: dt.datetime, now: dt.datetime, rnd: random.Random
) -> list[SeedTenant]:
    """Create the tenants and everything they configure; return them with sampling weights."""
    tenant_rows = []
    for i in range(size.tenants):
        apply_to = Tenant.ApplyTo.TAGS if rnd.random() < 0.7 else Tenant.ApplyTo.ALL
        log_as = rnd.choices(
            [Tenant.LogAs.STARTER, Tenant.LogAs.ASSIGNEE, Tenant.LogAs.SPECIFIED], [70, 20, 10]
        )[0]
        tenant_rows.append(
            Tenant(
                name=f"{prefix} {rnd.choice(COMPANY_WORDS)} IT {i + 1:04d}",
                time_logging_enabled=True,
                apply_to=apply_to,
                log_as=log_as,
            )
        )
    tenants_db = Tenant.objects.bulk_create(tenant_rows)
    tags = Tag.objects.bulk_create(
        [Tag(tenant=t, name=name) for t in tenants_db for name in TAG_NAMES]
    )
    tags_by_tenant = {
        t.pk: tags[i * len(TAG_NAMES) : (i + 1) * len(TAG_NAMES)] for i, t in enumerate(tenants_db)
    }
    Tenant.apply_tags.through.objects.bulk_create(
        [
            Tenant.apply_tags.through(tenant_id=t.pk, tag_id=tag.pk)
            for t in tenants_db
            if t.apply_to == Tenant.ApplyTo.TAGS
            for tag in tags_by_tenant[t.pk][:2]  # "Time Logging" and "Ad-hoc"
        ]
    )

    connections = []
    for t in tenants_db:
        vendor = rnd.choices([v for v, _ in VENDORS], [w for _, w in VENDORS])[0]
        paused = rnd.random() < 0.02
        connections.append(
            PSAConnection(
                tenant=t,
                vendor=vendor,
                name=f"{vendor} ({t.name})",
                settings=_connection_settings(vendor, _slug(t.name)),
                # No secrets: a worker pointed at a seeded database by mistake fails each entry
                # as a configuration problem instead of calling anyone (the sites are .invalid).
                secrets_encrypted="",
                paused_at=now - dt.timedelta(hours=rnd.uniform(2, 40)) if paused else None,
                pause_reason=PAUSE_REASONS[vendor] if paused else "",
            )
        )
    connections = PSAConnection.objects.bulk_create(connections)

    seeded: list[SeedTenant] = []
    for t, conn in zip(tenants_db, connections, strict=True):
        seeded.append(
            SeedTenant(
                id=t.pk,
                name=t.name,
                slug=_slug(t.name),
                vendor=conn.vendor,
                log_as=t.log_as,
                apply_to=t.apply_to,
                connection_id=conn.pk,
                paused_at=conn.paused_at,
                pause_reason=conn.pause_reason,
                specified=None,
                ticket_base=rnd.randrange(10_000, 900_000),
                next_psa_entry_id=rnd.randrange(100_000, 5_000_000),
            )
        )

    _users_seed(seeded, size=size, rnd=rnd)
    _clients_seed(seeded, tags_by_tenant, size=size, start=start, rnd=rnd)
    _automations_seed(seeded, size=size, start=start, rnd=rnd)
    # The "specified PSA user" of tenants that log as one: a generic time-logging user.
    specified = [s for s in seeded if s.log_as == Tenant.LogAs.SPECIFIED]
    for s in specified:
        _email, ref, name = s.users.items[0]
        s.specified = (ref, name)
    for s in specified:
        assert s.specified is not None
        Tenant.objects.filter(pk=s.id).update(
            specified_psa_user_ref=s.specified[0], specified_psa_user_name=s.specified[1]
        )
    return seeded


def _users_seed(seeded: list[SeedTenant], *, size: CatalogSize, rnd: random.Random) -> None:
    """The technicians of each MSP and their PSA identities (cached e-mail → user mappings)."""
    writer = RowWriter(
        PSAUserMapping,
        ["id", "tenant", "connection", "email", "psa_user_ref", "psa_user_name", "source"]
        + ["updated_at"],
    )
    now = dt.datetime.now(dt.UTC)
    rows = []
    names = list(itertools.product(FIRST_NAMES, LAST_NAMES))
    for s in seeded:
        picked = rnd.sample(names, min(size.users_per_tenant, len(names)))
        taken: set[str] = set()
        for n, (first, last) in enumerate(picked):
            email = f"{first}.{last}@{s.slug}.example"
            ref = _psa_ref(s.vendor, first, last, n, taken)
            taken.add(ref)
            name = f"{first.title()} {last.title()}"
            # A few technicians do most of the work.
            s.users.add((email, ref, name), 1.0 / (n + 1) ** 0.6)
            rows.append((s.id, s.connection_id, email, ref, name, "resolved", now))
    ids = writer.allocate_ids(len(rows))
    writer.write((pk, *row) for pk, row in zip(ids, rows, strict=True))


def _clients_seed(
    seeded: list[SeedTenant],
    tags_by_tenant: dict[int, list[Tag]],
    *,
    size: CatalogSize,
    start: dt.datetime,
    rnd: random.Random,
) -> None:
    clients = RowWriter(Client, ["id", "tenant", "key", "name", "created_at"])
    client_tags = RowWriter(Client.tags.through, ["id", "client", "tag"])
    ids = clients.allocate_ids(len(seeded) * size.clients_per_tenant)
    client_rows = []
    tag_rows: list[tuple[int, int]] = []
    position = 0
    for s in seeded:
        logging_tag, adhoc_tag, managed_tag = tags_by_tenant[s.id]
        for rank in range(size.clients_per_tenant):
            pk = ids[position]
            position += 1
            word = rnd.choice(COMPANY_WORDS)
            name = f"{word} {rnd.choice(COMPANY_WORDS)} {rnd.choice(COMPANY_SUFFIXES)}"
            key = f"{_slug(word)}-{rank + 1:05d}"
            created = start - dt.timedelta(days=rnd.uniform(0, 900))
            client_rows.append((pk, s.id, key, name, created))
            s.client_domains[pk] = f"{_slug(word)}.example"
            # Client activity follows a Zipf-like curve: a few busy clients, a long tail.
            weight = 1.0 / (rank + 1) ** 0.8
            tags = []
            if rnd.random() < 0.7:
                tags.append(logging_tag)
            elif rnd.random() < 0.5:
                tags.append(adhoc_tag)
            if rnd.random() < 0.3:
                tags.append(managed_tag)
            tag_rows.extend((pk, tag.pk) for tag in tags)
            in_scope = s.apply_to == Tenant.ApplyTo.ALL or any(
                tag in (logging_tag, adhoc_tag) for tag in tags
            )
            (s.in_scope_clients if in_scope else s.out_of_scope_clients).add(pk, weight)
    clients.write(client_rows)
    tag_ids = client_tags.allocate_ids(len(tag_rows))
    client_tags.write((pk, *row) for pk, row in zip(tag_ids, tag_rows, strict=True))


def _automations_seed(
    seeded: list[SeedTenant], *, size: CatalogSize, start: dt.datetime, rnd: random.Random
) -> None:
    writer = RowWriter(
        Automation, ["id", "tenant", "key", "name", "log_time", "minutes", "created_at"]
    )
    ids = writer.allocate_ids(len(seeded) * size.automations_per_tenant)
    rows = []
    position = 0
    for s in seeded:
        for rank in range(size.automations_per_tenant):
            pk = ids[position]
            position += 1
            base_name, seconds, summary = AUTOMATIONS[rank % len(AUTOMATIONS)]
            variant = rank // len(AUTOMATIONS)
            name = base_name if variant == 0 else f"{base_name} ({variant + 1})"
            log_time = rank == 0 or rnd.random() >= 0.06  # every tenant logs something
            minutes = rnd.choice([None, None, 5, 10, 15, 20, 30]) if log_time else None
            created = start - dt.timedelta(days=rnd.uniform(0, 400))
            rows.append((pk, s.id, _slug(name), name, log_time, minutes, created))
            automation = SeedAutomation(pk, name, minutes, seconds, summary)
            weight = 1.0 / (rank + 1) ** 1.1
            (s.logged_automations if log_time else s.off_automations).add(automation, weight)
    writer.write(rows)
