"""Adding a PSA connection in a real browser, for each vendor: the vendor select swaps the
fields (a reload with ?vendor=, keeping the tenant and the name), the connection saves with
that vendor's settings, and without JavaScript "Save" is the vendor step.

Regression: the vendor field rendered as a free-text input, so choosing another PSA did
nothing and only ConnectWise could be added from the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from timelogging.crypto import decrypt_secrets
from timelogging.models import PSAConnection, Tenant

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.django_db(transaction=True)

# What a person types for each vendor: (label in the select, fields, saved settings, secrets).
VENDORS = {
    "connectwise": (
        "ConnectWise PSA",
        {
            "site_url": "https://api-na.myconnectwise.net",
            "company_id": "acme",
            "public_key": "pub-123",
            "private_key": "cw-private-key",
        },
        {"site_url", "company_id", "public_key"},
        {"private_key": "cw-private-key"},
    ),
    "autotask": (
        "Autotask",
        {
            "api_username": "abc123@acme.example",
            "integration_code": "AT-TRACKING-ID",
            "secret": "at-secret",
        },
        {"api_username", "impersonate"},  # a checkbox: saved as False
        {"integration_code": "AT-TRACKING-ID", "secret": "at-secret"},
    ),
    "halopsa": (
        "HaloPSA",
        {
            "auth_url": "https://acme.halopsa.com/auth",
            "resource_url": "https://acme.halopsa.com/api",
            "client_id": "halo-client",
            "client_secret": "halo-secret",
        },
        {"auth_url", "resource_url", "client_id"},
        {"client_secret": "halo-secret"},
    ),
}


@pytest.fixture
def tenant(live_server) -> Tenant:
    return Tenant.objects.create(name="Acme MSP")


def add_url(live_server, tenant: Tenant) -> str:
    # As the tenant page's "Add a PSA connection" link opens it.
    return f"{live_server.url}/admin/timelogging/psaconnection/add/?tenant={tenant.pk}"


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_add_a_connection_for_each_vendor(admin_page: Page, live_server, tenant, shots, vendor):
    label, typed, settings, secrets = VENDORS[vendor]
    page = admin_page
    page.goto(add_url(live_server, tenant))
    select = page.locator("select#id_vendor")
    expect(select).to_be_visible()
    page.fill("#id_name", f"{label} main")
    if vendor != "connectwise":
        # Choosing the PSA swaps its fields in, keeping what was typed above.
        select.select_option(label=label)
        page.wait_for_url(f"**vendor={vendor}**")
    expect(page.locator("select#id_vendor")).to_have_value(vendor)
    expect(page.locator("#id_name")).to_have_value(f"{label} main")
    expect(page.locator("fieldset h2").filter(has_text=f"{label} settings")).to_be_visible()
    for other, (_, other_fields, _, _) in VENDORS.items():
        if other != vendor:  # none of another PSA's own fields
            for name in set(other_fields) - set(typed):
                expect(page.locator(f"#id_{name}")).to_have_count(0)
    for name, value in typed.items():
        page.fill(f"#id_{name}", value)
    shots(f"{vendor}-filled")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    shots(f"{vendor}-saved")

    connection = PSAConnection.objects.get(tenant=tenant)
    assert connection.vendor == vendor
    assert connection.name == f"{label} main"
    assert set(connection.settings) == settings
    assert decrypt_secrets(connection.secrets_encrypted) == secrets


def test_vendor_step_without_javascript(bare_admin_page: Page, live_server, tenant, shots):
    page = bare_admin_page
    page.goto(add_url(live_server, tenant))
    page.fill("#id_name", "Halo")
    page.select_option("select#id_vendor", label="HaloPSA")
    shots("halopsa-chosen")
    page.click("input[name=_save]")  # the vendor step: shows HaloPSA's fields
    expect(page.locator("ul.messagelist")).to_contain_text("Enter the HaloPSA settings")
    expect(page.locator("#id_auth_url")).to_be_visible()
    expect(page.locator("#id_site_url")).to_have_count(0)
    expect(page.locator("#id_name")).to_have_value("Halo")
    assert not PSAConnection.objects.exists()
    shots("halopsa-fields")
    for name, value in VENDORS["halopsa"][1].items():
        page.fill(f"#id_{name}", value)
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    shots("halopsa-saved")
    assert PSAConnection.objects.get(tenant=tenant).vendor == "halopsa"
