"""Demo data for the sandbox, created idempotently (safe to run any number of times)."""

from __future__ import annotations

from django.db import transaction

from psa.sandbox.models import SandboxAccount, SandboxMember, SandboxTicket, Vendor

DEMO_PUBLIC_KEY = "sandbox-public-key"
DEMO_PRIVATE_KEY = "sandbox-private-key"

# (member id, identifier, first name, last name, primary e-mail, office e-mail, inactive)
CONNECTWISE_MEMBERS = (
    (101, "jdoe", "John", "Doe", "john.doe@demo-msp.example", "", False),
    (102, "asmith", "Alice", "Smith", "", "alice.smith@demo-msp.example", False),
    (103, "timelogging", "Time", "Logging", "timelogging@demo-msp.example", "", False),
    (104, "gone", "Gone", "Away", "gone@demo-msp.example", "", True),
)
# (ticket id, summary, owner identifier or None, resources)
CONNECTWISE_TICKETS = (
    (1001, "Password reset for a user", "jdoe", "jdoe"),
    (1002, "Onboard a new employee", "asmith", "asmith,jdoe"),
    (1003, "Disk cleanup on a file server", None, ""),
)


@transaction.atomic
def seed_connectwise(
    company_id: str = "demo",
    public_key: str = DEMO_PUBLIC_KEY,
    private_key: str = DEMO_PRIVATE_KEY,
) -> SandboxAccount:
    """A ConnectWise account with the demo members and tickets; returns the account.

    Existing rows are kept as they are, except the account's keys, which are set to the ones
    given so that the caller can always authenticate with them.
    """
    vendor = Vendor.CONNECTWISE
    account, _ = SandboxAccount.objects.update_or_create(
        vendor=vendor,
        company_id=company_id,
        defaults={"public_key": public_key, "private_key": private_key},
        create_defaults={
            "public_key": public_key,
            "private_key": private_key,
            "name": f"{company_id.title()} MSP",
        },
    )
    members = {}
    for member_id, identifier, first, last, primary, office, inactive in CONNECTWISE_MEMBERS:
        members[identifier], _ = SandboxMember.objects.get_or_create(
            account=account,
            identifier=identifier,
            defaults={
                "vendor": vendor,
                "member_id": member_id,
                "first_name": first,
                "last_name": last,
                "primary_email": primary,
                "office_email": office,
                "inactive": inactive,
            },
        )
    for ticket_id, summary, owner, resources in CONNECTWISE_TICKETS:
        SandboxTicket.objects.get_or_create(
            account=account,
            ticket_id=ticket_id,
            defaults={
                "vendor": vendor,
                "summary": summary,
                "owner": members[owner] if owner else None,
                "resources": resources,
            },
        )
    return account
