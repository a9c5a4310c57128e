"""Demo data for the sandbox, created idempotently (safe to run any number of times)."""

from __future__ import annotations

from typing import Any

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


# --- HaloPSA --------------------------------------------------------------------------------
DEMO_HALO_CLIENT_ID = "sandbox-halo-client-id"
DEMO_HALO_CLIENT_SECRET = "sandbox-halo-client-secret"
# The agent the demo API application logs in as (``GET Agent/me``).
HALO_API_AGENT_ID = 5

# (agent id, identifier, first name, last name, e-mail, disabled, extra). Agent 1 is Halo's
# "Unassigned" placeholder: tickets without an agent have agent_id 1.
HALOPSA_AGENTS: tuple[tuple[int, str, str, str, str, bool, dict[str, Any]], ...] = (
    (1, "unassigned", "Unassigned", "", "", False, {"placeholder": True}),
    (3, "jdoe", "John", "Doe", "john.doe@demo-msp.example", False, {}),
    (4, "asmith", "Alice", "Smith", "alice.smith@demo-msp.example", False, {}),
    (5, "timelogging", "Time", "Logging", "timelogging@demo-msp.example", False, {}),
    (6, "disabled", "Disabled", "Agent", "disabled@demo-msp.example", True, {}),
)
# (ticket id, summary, agent identifier or None for unassigned, opened at (UTC, Halo format))
HALOPSA_TICKETS = (
    (1001, "Password reset for a user", "jdoe", "2026-05-01T08:00:00"),
    (1002, "Onboard a new employee", "asmith", "2026-05-01T09:30:00"),
    (1003, "Disk cleanup on a file server", None, "2026-05-01T10:15:00"),
)


@transaction.atomic
def seed_halopsa(
    company_id: str = "demo",
    client_id: str = DEMO_HALO_CLIENT_ID,
    client_secret: str = DEMO_HALO_CLIENT_SECRET,
) -> SandboxAccount:
    """A HaloPSA tenant (``company_id``) with the demo agents and tickets; returns the account.

    The client id and secret are stored as the account's public and private key. Existing
    rows are kept as they are, except the credentials, which are set to the ones given.
    """
    vendor = Vendor.HALOPSA
    account, _ = SandboxAccount.objects.update_or_create(
        vendor=vendor,
        company_id=company_id,
        defaults={"public_key": client_id, "private_key": client_secret},
        create_defaults={
            "public_key": client_id,
            "private_key": client_secret,
            "name": f"{company_id.title()} MSP",
            "options": {"read_lag_seconds": 3, "api_agent_id": HALO_API_AGENT_ID},
        },
    )
    agents = {}
    for agent_id, identifier, first, last, email, disabled, extra in HALOPSA_AGENTS:
        agents[identifier], _ = SandboxMember.objects.get_or_create(
            account=account,
            identifier=identifier,
            defaults={
                "vendor": vendor,
                "member_id": agent_id,
                "first_name": first,
                "last_name": last,
                "primary_email": email,
                "inactive": disabled,
                "extra": extra,
            },
        )
    for ticket_id, summary, agent, opened in HALOPSA_TICKETS:
        SandboxTicket.objects.get_or_create(
            account=account,
            ticket_id=ticket_id,
            defaults={
                "vendor": vendor,
                "summary": summary,
                "owner": agents[agent] if agent else None,
                "extra": {"dateoccurred": opened},
            },
        )
    return account


# --- Autotask -------------------------------------------------------------------------------
AUTOTASK_DEMO_API_USER = "api@demo-msp.example"
# Autotask's tracking identifiers are 27 characters long.
AUTOTASK_DEMO_INTEGRATION_CODE = "SANDBOXINTEGRATIONCODE00001"
AUTOTASK_DEMO_SECRET = "sandbox-autotask-secret"
AUTOTASK_API_RESOURCE_ID = 29682885
# (resource id, user name, first name, last name, e-mail, inactive, extra); the API user's own
# resource (e-mail = the API user name) is added by seed_autotask.
AUTOTASK_RESOURCES = (
    (29682886, "jdoe", "John", "Doe", "john.doe@demo-msp.example", False, {"default_role_id": 8}),
    (
        29682887,
        "asmith",
        "Alice",
        "Smith",
        "alice.smith@demo-msp.example",
        False,
        {"default_role_id": 8},
    ),
    (
        29682888,
        "timelogging",
        "Time",
        "Logging",
        "timelogging@demo-msp.example",
        False,
        {"default_role_id": 8},
    ),
    (29682889, "gone", "Gone", "Away", "gone@demo-msp.example", True, {"default_role_id": 8}),
)
# (ticket id, title, assigned resource user name or None, assigned role id or None); 1002's
# assigned role (9) differs from asmith's default role (8).
AUTOTASK_TICKETS = (
    (1001, "Password reset for a user", "jdoe", 8),
    (1002, "Onboard a new employee", "asmith", 9),
    (1003, "Disk cleanup on a file server", None, None),
)


@transaction.atomic
def seed_autotask(
    company_id: str = AUTOTASK_DEMO_API_USER,
    integration_code: str = AUTOTASK_DEMO_INTEGRATION_CODE,
    secret: str = AUTOTASK_DEMO_SECRET,
) -> SandboxAccount:
    """An Autotask database for the API user ``company_id``, with the demo resources and
    tickets; returns the account. Proxy Time Entry starts off (``options``).

    Existing rows are kept as they are, except the account's integration code and secret,
    which are set to the ones given so that the caller can always authenticate with them.
    """
    vendor = Vendor.AUTOTASK
    account, _ = SandboxAccount.objects.update_or_create(
        vendor=vendor,
        company_id=company_id,
        defaults={"public_key": integration_code, "private_key": secret},
        create_defaults={
            "public_key": integration_code,
            "private_key": secret,
            "name": "Demo MSP (Autotask)",
            "options": {"proxy_time_entry": False},
        },
    )
    api_user = (
        AUTOTASK_API_RESOURCE_ID,
        "api",
        "API",
        "User",
        company_id,
        False,
        # API-only security levels cannot be impersonated and get no service desk role.
        {"license": "API User", "impersonation_allowed": False},
    )
    resources = {}
    for resource_id, user_name, first, last, email, inactive, extra in (
        api_user,
        *AUTOTASK_RESOURCES,
    ):
        resources[user_name], _ = SandboxMember.objects.get_or_create(
            account=account,
            identifier=user_name,
            defaults={
                "vendor": vendor,
                "member_id": resource_id,
                "first_name": first,
                "last_name": last,
                "primary_email": email,
                "inactive": inactive,
                "extra": extra,
            },
        )
    for ticket_id, title, assigned, role_id in AUTOTASK_TICKETS:
        SandboxTicket.objects.get_or_create(
            account=account,
            ticket_id=ticket_id,
            defaults={
                "vendor": vendor,
                "summary": title,
                "owner": resources[assigned] if assigned else None,
                "extra": {"assigned_role_id": role_id} if assigned else {},
            },
        )
    return account
