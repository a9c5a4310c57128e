"""The history lists' search: exact ids, the starter's e-mail, client and automation names;
the list says what was searched; staff never find another tenant's rows by a name."""

from __future__ import annotations

import pytest

from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    TenantFactory,
    TimeEntryFactory,
)
from tests.timelogging.admin_support import admin_url
from tests.timelogging.tenancy import make_member
from timelogging.admin.search import MAX_NAMED
from timelogging.models import AutomationRun, TimeEntry

pytestmark = pytest.mark.django_db


def found(client, model, term: str) -> tuple[list[str], list[str]]:
    """(run ids listed, messages shown) for a search of ``model``'s list."""
    response = client.get(admin_url(model, "changelist"), {"q": term})
    assert response.status_code == 200
    rows = response.context["cl"].result_list
    run_ids = sorted(r.run_id if model is AutomationRun else r.run.run_id for r in rows)
    return run_ids, [str(m) for m in response.context["messages"]]


@pytest.fixture
def history():
    tenant = TenantFactory(name="Acme MSP")
    contoso = ClientFactory(tenant=tenant, key="contoso", name="Contoso Ltd")
    fabrikam = ClientFactory(tenant=tenant, key="fabrikam", name="Fabrikam")
    reset = AutomationFactory(tenant=tenant, key="reset-password", name="Reset password")
    cleanup = AutomationFactory(tenant=tenant, key="disk-cleanup", name="Disk cleanup")
    runs = {
        "r1": AutomationRunFactory(
            tenant=tenant,
            run_id="r1",
            client=contoso,
            automation=reset,
            started_by="jane@msp.example",
        ),
        "r2": AutomationRunFactory(
            tenant=tenant,
            run_id="r2",
            client=fabrikam,
            automation=cleanup,
            started_by="john@msp.example",
        ),
        "r3": AutomationRunFactory(
            tenant=tenant,
            run_id="r3",
            client=fabrikam,
            automation=reset,
            started_by="john@msp.example",
        ),
    }
    for run in runs.values():
        TimeEntryFactory(tenant=tenant, run=run)
    return tenant


@pytest.mark.parametrize("model", [AutomationRun, TimeEntry])
def test_a_client_name_in_part_finds_its_runs(admin_client, history, model):
    run_ids, shown = found(admin_client, model, "contoso")
    assert run_ids == ["r1"]
    assert any("client and automation names" in m and "“contoso”" in m for m in shown)
    assert found(admin_client, model, "FABRIK")[0] == ["r2", "r3"]  # any case


@pytest.mark.parametrize("model", [AutomationRun, TimeEntry])
def test_an_automation_name_or_key_finds_its_runs(admin_client, history, model):
    assert found(admin_client, model, "Reset pass")[0] == ["r1", "r3"]
    assert found(admin_client, model, "disk-cleanup")[0] == ["r2"]


@pytest.mark.parametrize("model", [AutomationRun, TimeEntry])
def test_the_starters_email_finds_their_runs_whatever_the_case(admin_client, history, model):
    run_ids, shown = found(admin_client, model, "John@MSP.example")
    assert run_ids == ["r2", "r3"]
    assert any("the starter's e-mail" in m for m in shown)
    assert found(admin_client, model, "jo@msp.example")[0] == []  # exact, not in part


@pytest.mark.parametrize("model", [AutomationRun, TimeEntry])
def test_exact_ids_are_still_found(admin_client, history, model):
    assert found(admin_client, model, "r2")[0] == ["r2"]


def test_staff_never_reach_another_tenants_runs_by_a_name(client, history):
    other = TenantFactory(name="Other MSP")
    theirs = ClientFactory(tenant=other, key="contoso-too", name="Contoso Too")
    AutomationRunFactory(tenant=other, run_id="theirs", client=theirs)
    client.force_login(make_member(history, "staff"))
    assert found(client, AutomationRun, "contoso")[0] == ["r1"]


def test_a_name_matching_too_many_clients_is_said_not_scanned(admin_client, history):
    for n in range(MAX_NAMED + 1):
        ClientFactory(tenant=history, key=f"shop-{n}", name=f"Shop {n}")
    run_ids, shown = found(admin_client, AutomationRun, "shop")
    assert run_ids == []
    assert any(f"More than {MAX_NAMED} clients match “shop”" in m for m in shown)
