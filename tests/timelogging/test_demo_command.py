"""``manage.py demo --vendor``: the demo tenant on each vendor's sandbox, and its curl works."""

from __future__ import annotations

import io
import json
import re
import shlex

import pytest
import requests
from django.core.management import call_command

from psa.sandbox.models import SandboxAccount, SandboxTimeEntry
from timelogging.management.sandbox import SANDBOX_VENDORS
from timelogging.models import PSAConnection, Tenant, TimeEntry
from timelogging.services.connections import connection_test
from timelogging.services.delivery import connection_pause
from timelogging.services.posting import entry_post

VENDORS = list(SANDBOX_VENDORS)


def demo(vendor: str | None = None, port: int = 8123) -> str:
    out = io.StringIO()
    args = ["--setup-only", "--port", str(port)]
    if vendor:
        args += ["--vendor", vendor]
    call_command("demo", *args, stdout=out)
    return out.getvalue()


def active_connections() -> list[PSAConnection]:
    return list(PSAConnection.objects.filter(is_active=True))


@pytest.mark.django_db
@pytest.mark.parametrize("vendor", VENDORS)
def test_setup_only_leaves_one_active_connection_of_the_vendor(vendor):
    output = demo(vendor)

    [connection] = active_connections()
    assert connection.tenant.name == "Demo MSP"
    assert connection.vendor == vendor
    assert connection.name == f"{SANDBOX_VENDORS[vendor].label} sandbox"
    assert SandboxAccount.objects.filter(vendor=vendor).exists()
    label = SANDBOX_VENDORS[vendor].label
    assert f"PSA:            {label} (sandbox). Switch with `make run VENDOR=" in output
    assert f"(what {label} received)" in output
    assert SANDBOX_VENDORS[vendor].jdoe_shown_as in output


@pytest.mark.django_db
def test_connectwise_is_the_default():
    demo()
    assert [c.vendor for c in active_connections()] == ["connectwise"]


@pytest.mark.django_db
def test_switching_vendors_repoints_the_tenant_and_reuses_connections():
    demo("connectwise")
    demo("autotask")
    demo("halopsa")
    demo("autotask", port=8124)

    [active] = active_connections()
    assert active.vendor == "autotask"
    assert active.settings["discovery_url"] == "http://127.0.0.1:8124/sandbox/autotask/"
    tenant = Tenant.objects.get(name="Demo MSP")
    # One connection per vendor, re-pointed rather than piled up.
    assert sorted(tenant.psaconnection_set.values_list("vendor", flat=True)) == sorted(VENDORS)


@pytest.mark.django_db
def test_demo_resumes_a_paused_connection():
    demo("halopsa")
    [connection] = active_connections()
    connection_pause(connection_id=connection.pk, reason="Paused by staff.")
    demo("halopsa")
    connection.refresh_from_db()
    assert connection.paused_at is None


@pytest.mark.django_db
def test_each_start_puts_the_demo_settings_back():
    # Staff try the admin between two starts; the next start's printed curl must still log
    # 20 minutes on ticket 1001 as John Doe for tagged Contoso.
    demo()
    tenant = Tenant.objects.get(name="Demo MSP")
    tenant.time_logging_enabled = False
    tenant.apply_to = Tenant.ApplyTo.NONE
    tenant.log_as = Tenant.LogAs.SPECIFIED
    tenant.specified_psa_user_ref = "42"
    tenant.specified_psa_user_name = "Someone Else"
    tenant.save()
    tenant.apply_tags.clear()
    contoso = tenant.client_set.get(key="contoso")
    contoso.tags.clear()
    tenant.client_set.get(key="fabrikam").tags.add(*tenant.tag_set.all())
    tenant.automation_set.filter(key="reset-password").update(minutes=5, log_time=False)

    demo()

    tenant.refresh_from_db()
    assert (tenant.time_logging_enabled, tenant.apply_to, tenant.log_as) == (
        True,
        Tenant.ApplyTo.TAGS,
        Tenant.LogAs.STARTER,
    )
    assert (tenant.specified_psa_user_ref, tenant.specified_psa_user_name) == ("", "")
    assert [t.name for t in tenant.apply_tags.all()] == ["Time Logging"]
    assert [t.name for t in contoso.tags.all()] == ["Time Logging"]
    assert not tenant.client_set.get(key="fabrikam").tags.filter(name="Time Logging").exists()
    reset = tenant.automation_set.get(key="reset-password")
    assert (reset.minutes, reset.log_time) == (20, True)


@pytest.mark.django_db
def test_autotask_demo_turns_proxy_time_entry_on():
    # The demo logs time as John Doe, not as the API user: Autotask needs Proxy Time Entry.
    demo("autotask")
    assert SandboxAccount.objects.get(vendor="autotask").options["proxy_time_entry"] is True


def test_unknown_vendor_is_refused():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="invalid choice: 'kaseya'"):
        call_command("demo", "--setup-only", "--vendor", "kaseya")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("vendor", VENDORS)
def test_the_printed_curl_works_for_each_vendor(live_server, vendor):
    port = live_server.thread.port
    output = demo(vendor, port=port)
    [connection] = active_connections()
    assert connection_test(connection=connection).ok

    # The curl as printed (the worker's part is run here, in-process).
    curl = output[output.index("curl -s -X POST") :].split("\n\n")[0]
    words = shlex.split(curl.replace("\\\n", " "))
    url = words[words.index("POST") + 1]
    headers = dict(
        h.split(": ", 1) for h in (words[i + 1] for i, w in enumerate(words) if w == "-H")
    )
    payload = json.loads(words[words.index("-d") + 1])
    assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/api/v1/automation-runs/", url)
    response = requests.post(url, data=json.dumps(payload), headers=headers, timeout=30)
    assert response.status_code == 201, response.text

    entry = TimeEntry.objects.get(run__run_id=payload["run_id"])
    assert entry_post(entry_id=entry.pk) == "posted", entry.error
    entry.refresh_from_db()
    assert entry.psa_user_ref == SANDBOX_VENDORS[vendor].jdoe_ref
    [stored] = SandboxTimeEntry.objects.filter(vendor=vendor).select_related("ticket", "member")
    assert (stored.ticket.ticket_id, stored.member.identifier) == (1001, "jdoe")

    # The entry's link to the ticket in the PSA's web app: the sandbox's page, at the ticket.
    opened = requests.get(entry.psa_ticket_url, timeout=30)
    assert opened.status_code == 200
    assert opened.history[0].headers["Location"] == f"/sandbox/#{vendor}-ticket-1001"
    assert f'id="{vendor}-ticket-1001"' in opened.text


def test_every_vendor_has_a_sandbox_for_the_demo():
    # The demo's --vendor choices are the registry's vendors (the command cannot import the
    # sandbox before it knows the app is installed): each must have a sandbox.
    from psa.registry import BACKENDS

    assert set(SANDBOX_VENDORS) == set(BACKENDS)
