"""The main job end to end: a run reported over HTTP becomes an entry in the ConnectWise
sandbox (real HTTP), posted by the real ``qcluster`` worker, and shows as posted."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from django.utils import timezone

from psa.sandbox.models import SandboxTimeEntry
from psa.sandbox.seed import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, seed_connectwise
from tests.e2e.conftest import wait_for
from timelogging.models import Automation, Tag, Tenant, TenantAPIKey, TimeEntry
from timelogging.services.connections import connection_save

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_tenant(live_server):
    seed_connectwise(company_id="demo")
    tenant = Tenant.objects.create(
        name="E2E MSP",
        time_logging_enabled=True,
        apply_to=Tenant.ApplyTo.TAGS,
        log_as=Tenant.LogAs.STARTER,
    )
    tag = Tag.objects.create(tenant=tenant, name="Time Logging")
    tenant.apply_tags.set([tag])
    client = tenant.client_set.create(key="contoso", name="Contoso")
    client.tags.add(tag)
    Automation.objects.create(tenant=tenant, key="reset-password", minutes=20)
    connection_save(
        tenant=tenant,
        vendor="connectwise",
        settings={
            "site_url": f"{live_server.url}/sandbox/connectwise",
            "company_id": "demo",
            "public_key": DEMO_PUBLIC_KEY,
        },
        secrets={"private_key": DEMO_PRIVATE_KEY},
    )
    _, key = TenantAPIKey.objects.create_key(tenant=tenant, name="e2e")
    return tenant, key


def test_a_reported_run_is_posted_to_the_connectwise_sandbox(live_server, qcluster, demo_tenant):
    tenant, key = demo_tenant
    # The run finished two minutes ago and is logged as 20 minutes: its end would be in the
    # future, so ConnectWise's rule moves the window back to end at the posting time.
    started = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=3)
    run = {
        "run_id": "e2e-1",
        "automation": {"key": "reset-password", "name": "Reset password"},
        "client": {"key": "contoso"},
        "ticket_id": "1001",
        "started_by": "John.Doe@demo-msp.example",
        "started_at": started.isoformat(),
        "completed_at": (started + dt.timedelta(minutes=1)).isoformat(),
        "summary": "Reset the password of jane@contoso.example",
    }
    url = f"{live_server.url}/api/v1/automation-runs/"
    headers = {"Authorization": f"Bearer {key}"}
    created = requests.post(url, json=run, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["entry"]["status"] == "pending"

    def posted():
        body = requests.get(f"{url}e2e-1/", headers=headers, timeout=30).json()
        return body if body["entry"]["status"] in ("posted", "failed") else None

    body = wait_for(posted, timeout=90, what="the worker to post the entry")
    assert body["entry"]["status"] == "posted", (body, qcluster.output()[-3000:])
    assert body["entry"]["logged_as"] == {"ref": "jdoe", "name": "John Doe"}

    [stored] = SandboxTimeEntry.objects.select_related("ticket", "member")
    assert stored.ticket.ticket_id == 1001
    assert stored.member.identifier == "jdoe"
    assert body["entry"]["psa_entry_id"] == str(stored.pk)
    assert stored.time_end - stored.time_start == dt.timedelta(minutes=20)
    assert stored.time_end <= timezone.now()
    entry = TimeEntry.objects.select_related("run").get()
    assert entry.run.reference_text in stored.notes
    assert "Reset the password of jane@contoso.example" in stored.notes

    # A retry of the same report changes nothing: still one entry in the PSA.
    again = requests.post(url, json=run, headers=headers, timeout=30)
    assert again.status_code == 200
    assert SandboxTimeEntry.objects.count() == 1
