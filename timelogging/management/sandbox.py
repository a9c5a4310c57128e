"""Pointing a tenant at one vendor's local PSA sandbox: the demo (``manage.py demo --vendor``)
and the end-to-end tests use the same settings, so the demo's connection is the tested one.

Every sandbox has ticket 1001 and John Doe (john.doe@demo-msp.example); ``jdoe_ref`` is how
each PSA names him.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from psa.sandbox import seed
from psa.sandbox.models import SandboxAccount
from timelogging.models import PSAConnection, Tenant
from timelogging.services.connections import connection_save
from timelogging.services.delivery import connection_resume


@dataclass(frozen=True)
class SandboxVendor:
    vendor: str
    label: str
    seed: Callable[[], SandboxAccount]
    # The connection's settings for a sandbox served at a base URL (http://127.0.0.1:8000).
    settings: Callable[[str], dict[str, Any]]
    secrets: dict[str, str]
    jdoe_ref: str
    # Who the demo's entry is logged under, as the sandbox page shows it.
    jdoe_shown_as: str


SANDBOX_VENDORS: dict[str, SandboxVendor] = {
    v.vendor: v
    for v in (
        SandboxVendor(
            vendor="connectwise",
            label="ConnectWise PSA",
            seed=lambda: seed.seed_connectwise(company_id="demo"),
            settings=lambda base: {
                "site_url": f"{base}/sandbox/connectwise",
                "company_id": "demo",
                "public_key": seed.DEMO_PUBLIC_KEY,
            },
            secrets={"private_key": seed.DEMO_PRIVATE_KEY},
            jdoe_ref="jdoe",
            jdoe_shown_as="member jdoe",
        ),
        SandboxVendor(
            vendor="autotask",
            label="Autotask",
            seed=seed.seed_autotask,
            settings=lambda base: {
                "api_username": seed.AUTOTASK_DEMO_API_USER,
                "discovery_url": f"{base}/sandbox/autotask/",
            },
            secrets={
                "integration_code": seed.AUTOTASK_DEMO_INTEGRATION_CODE,
                "secret": seed.AUTOTASK_DEMO_SECRET,
            },
            jdoe_ref=str(seed.AUTOTASK_RESOURCES[0][0]),
            jdoe_shown_as=f"resource {seed.AUTOTASK_RESOURCES[0][0]} (John Doe, his default role)",
        ),
        SandboxVendor(
            vendor="halopsa",
            label="HaloPSA",
            seed=lambda: seed.seed_halopsa(company_id="demo"),
            settings=lambda base: {
                "auth_url": f"{base}/sandbox/halopsa/auth",
                "resource_url": f"{base}/sandbox/halopsa/api",
                "halo_tenant": "demo",
                "client_id": seed.DEMO_HALO_CLIENT_ID,
                "outcome": "Automation",
            },
            secrets={"client_secret": seed.DEMO_HALO_CLIENT_SECRET},
            jdoe_ref=str(seed.HALOPSA_AGENTS[1][0]),
            jdoe_shown_as=f"agent {seed.HALOPSA_AGENTS[1][0]} (John Doe)",
        ),
    )
}


def sandbox_vendor(vendor: str) -> SandboxVendor:
    try:
        return SANDBOX_VENDORS[vendor]
    except KeyError:
        known = ", ".join(SANDBOX_VENDORS)
        raise ValueError(f"No sandbox for vendor {vendor!r}; choose one of {known}.") from None


@transaction.atomic
def sandbox_connection_save(
    *, tenant: Tenant, vendor: str, base_url: str, **extra_settings: Any
) -> PSAConnection:
    """Seed ``vendor``'s sandbox and make it the tenant's active connection.

    The tenant's connection of that vendor is re-pointed (a connection's vendor never changes:
    its entries keep pointing at it), or one is created; ``connection_save`` deactivates the
    others. A paused one is resumed: the demo starts from a working state.
    """
    spec = sandbox_vendor(vendor)
    spec.seed()
    existing = (
        PSAConnection.objects.filter(tenant=tenant, vendor=vendor).order_by("-is_active", "pk")
    ).first()
    connection = connection_save(
        connection=existing,
        tenant=tenant,
        vendor=vendor,
        name=f"{spec.label} sandbox",
        settings={**spec.settings(base_url.rstrip("/")), **extra_settings},
        secrets=spec.secrets,
        is_active=True,
    )
    if connection.paused_at is not None:
        connection_resume(connection_id=connection.pk)
        connection.refresh_from_db()
    return connection


def autotask_proxy_time_entry(*, enabled: bool) -> None:
    """Switch the Autotask sandbox's "Proxy Time Entry" system setting.

    Off (as seeded, and Autotask's default) only the API user's own resource may log time, so
    an entry for anyone else is refused unless the connection impersonates the resource.
    """
    account = seed.seed_autotask()
    account.options = {**(account.options or {}), "proxy_time_entry": enabled}
    account.save(update_fields=["options"])
