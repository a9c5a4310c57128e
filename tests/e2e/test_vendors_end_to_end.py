"""Each vendor end to end: a run reported over HTTP becomes an entry in that vendor's sandbox
(real HTTP), posted by the real ``qcluster`` under the right person. And Autotask's refusal to
log time for another resource: held, paused, explained in the admin, fixed, posted.

The tenants are pointed at the sandboxes exactly as ``manage.py demo --vendor`` does
(``timelogging.management.sandbox``).
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client as DjangoClient
from django.urls import reverse
from django.utils import timezone

from psa.sandbox.models import SandboxTimeEntry
from tests.e2e.conftest import wait_for
from tests.timelogging.admin_support import admin_url, changeform_data, messages_text
from timelogging.management.sandbox import (
    SANDBOX_VENDORS,
    autotask_proxy_time_entry,
    sandbox_connection_save,
)
from timelogging.models import Automation, PSAConnection, Tenant, TenantAPIKey, TimeEntry
from timelogging.services.delivery import entries_sweep

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JDOE_EMAIL = "John.Doe@demo-msp.example"  # any case: the PSAs' e-mails are matched exactly
TIMELOGGING_RESOURCE = "29682888"  # Autotask's "Time Logging" resource: not the API user


def make_tenant(live_server, vendor: str, **settings) -> tuple[Tenant, PSAConnection, str]:
    tenant = Tenant.objects.create(
        name=f"E2E {vendor}",
        time_logging_enabled=True,
        apply_to=Tenant.ApplyTo.ALL,
        **settings,
    )
    Automation.objects.create(tenant=tenant, key="reset-password", minutes=20)
    connection = sandbox_connection_save(tenant=tenant, vendor=vendor, base_url=live_server.url)
    _, key = TenantAPIKey.objects.create_key(tenant=tenant, name="e2e")
    return tenant, connection, key


def report(live_server, key: str, *, run_id: str, ticket_id: str) -> dict:
    # Finished an hour ago: no vendor's "no future time" rule moves the window.
    started = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    response = requests.post(
        f"{live_server.url}/api/v1/automation-runs/",
        json={
            "run_id": run_id,
            "automation": {"key": "reset-password", "name": "Reset password"},
            "client": {"key": "contoso", "name": "Contoso"},
            "ticket_id": ticket_id,
            "started_by": JDOE_EMAIL,
            "started_at": started.isoformat(),
            "completed_at": (started + dt.timedelta(minutes=2)).isoformat(),
            "summary": "Reset the password of jane@contoso.example",
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def entry_in(*statuses: str):
    def check():
        entry = TimeEntry.objects.select_related("run").first()
        return entry if entry is not None and entry.status in statuses else None

    return check


@pytest.mark.parametrize("vendor", list(SANDBOX_VENDORS))
def test_a_run_is_posted_to_each_vendors_sandbox_as_the_starter(live_server, qcluster, vendor):
    if vendor == "autotask":
        # Logging time for John Doe (not the API user) needs Proxy Time Entry (see below).
        autotask_proxy_time_entry(enabled=True)
    tenant, connection, key = make_tenant(live_server, vendor, log_as=Tenant.LogAs.STARTER)

    # Ticket 1002 is assigned to Alice Smith, with (in Autotask) a role that is not John's.
    report(live_server, key, run_id=f"e2e-{vendor}", ticket_id="1002")
    entry = wait_for(entry_in("posted", "failed", "held"), timeout=25, what="the post")

    assert entry.status == "posted", (entry.error, qcluster.output()[-3000:])
    assert entry.psa_user_ref == SANDBOX_VENDORS[vendor].jdoe_ref
    assert entry.psa_user_name == "John Doe"
    [stored] = SandboxTimeEntry.objects.filter(vendor=vendor).select_related("ticket", "member")
    assert (stored.ticket.ticket_id, stored.member.identifier) == (1002, "jdoe")
    assert stored.time_end - stored.time_start == dt.timedelta(minutes=20)
    assert entry.run.reference_text in stored.notes
    if vendor == "connectwise":
        assert entry.psa_entry_id == str(stored.pk)
        assert stored.payload["member"] == {"identifier": "jdoe"}
    elif vendor == "autotask":
        assert entry.psa_entry_id == str(stored.pk)
        assert stored.payload["resourceID"] == int(SANDBOX_VENDORS["autotask"].jdoe_ref)
        # John's default service desk role (8), not the ticket's assigned role (9).
        assert stored.payload["roleID"] == 8
    else:
        assert entry.psa_entry_id == f"1002/{stored.payload['id']}"
        assert stored.payload["who_agentid"] == int(SANDBOX_VENDORS["halopsa"].jdoe_ref)


def test_autotask_proxy_refusal_is_held_explained_and_posted_once_fixed(live_server, qcluster):
    autotask_proxy_time_entry(enabled=False)  # Autotask's default
    tenant, connection, key = make_tenant(
        live_server,
        "autotask",
        log_as=Tenant.LogAs.SPECIFIED,
        specified_psa_user_ref=TIMELOGGING_RESOURCE,
        specified_psa_user_name="Time Logging",
    )
    report(live_server, key, run_id="e2e-proxy", ticket_id="1001")

    # Refused: held (not retried blindly), the connection paused, and the fix spelled out.
    entry = wait_for(entry_in("held", "posted", "failed"), timeout=25, what="the refusal")
    assert entry.status == "held", (entry.status, entry.error, qcluster.output()[-3000:])
    assert entry.error_class == "configuration"
    assert "Proxy Time Entry" in entry.error and "impersonation" in entry.error
    connection.refresh_from_db()
    assert connection.paused_at is not None
    assert "Proxy Time Entry" in connection.pause_reason
    assert not SandboxTimeEntry.objects.exists()

    admin = DjangoClient()
    admin.force_login(User.objects.create_superuser("root", password="x"))
    entry_page = admin.get(admin_url(entry, "change")).content.decode()
    assert "Held (connection paused)" in entry_page
    assert "Enable Proxy Time Entry for administrators" in entry_page
    assert "turn on impersonation on the piadesk connection" in entry_page
    connection_page = admin.get(admin_url(connection, "change"))
    [warning] = [m for m in messages_text(connection_page) if "paused" in m]
    assert "Enable Proxy Time Entry for administrators" in warning
    assert "impersonation" in warning and "resume" in warning
    listed = admin.get(admin_url(PSAConnection, "changelist")).content.decode()
    assert "Paused since" in listed and "Autotask refused to log time for another" in listed

    # The fix, as staff make it: impersonation on (the resource's security level allows it),
    # checked with "Test connection", then the connection resumed.
    data = changeform_data(connection_page, impersonate="on")
    saved = admin.post(admin_url(connection, "change"), data)
    assert saved.status_code == 302
    test_url = reverse("admin:timelogging_psaconnection_test", args=[connection.pk])
    tested = admin.post(test_url, follow=True)
    assert any("Connected to Autotask" in m for m in messages_text(tested))
    resumed = admin.post(
        admin_url(PSAConnection, "changelist"),
        {"action": "resume_connections", "_selected_action": [connection.pk]},
        follow=True,
    )
    assert "Resumed; 1 held entries queued again." in messages_text(resumed)
    entries_sweep()  # the resume queued a sweep too; this one saves waiting for it

    entry = wait_for(entry_in("posted", "failed", "held"), timeout=25, what="the post")
    assert entry.status == "posted", (entry.error, qcluster.output()[-3000:])
    [stored] = SandboxTimeEntry.objects.select_related("member")
    assert stored.member.identifier == "timelogging"
    assert stored.payload["resourceID"] == int(TIMELOGGING_RESOURCE)
    assert entry.psa_entry_id == str(stored.pk)
