"""The Tenant Settings page as a product page (admin/tenant_page.py), server side: the changes
listed on save, the preview endpoint and service, the PSA connection panel and its test.

The browser drives the same page in tests/browser/test_tenant_settings_page.py.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import responses
from django.contrib import messages as messages_module
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from django.utils.text import capfirst

from tests.factories import (
    AutomationFactory,
    ClientFactory,
    PSAConnectionFactory,
    TagFactory,
    TenantFactory,
    tenant_settings_set,
)
from tests.timelogging.admin_support import admin_url, changeform_data, messages_text
from tests.timelogging.psa_mocks import API, SITE, connectwise, member
from timelogging.forms import TAGS_REQUIRED
from timelogging.models import (
    Automation,
    AutomationRun,
    PSAUserMapping,
    RequestBudget,
    Tenant,
)
from timelogging.services.decision import SettingsInForce
from timelogging.services.preview import PreviewRun, settings_preview

pytestmark = pytest.mark.django_db

JDOE = member("jdoe", "John", "Doe", "john.doe@demo-msp.example")
NOW = dt.datetime(2026, 5, 1, 12, 30, 40, tzinfo=dt.UTC)


@pytest.fixture
def tenant():
    tenant = TenantFactory(
        name="Acme MSP",
        time_logging_enabled=False,
        apply_to=Tenant.ApplyTo.NONE,
        log_as=Tenant.LogAs.STARTER,
    )
    PSAConnectionFactory(tenant=tenant, name="Acme's ConnectWise")
    return tenant


@pytest.fixture
def catalog(tenant):
    tag = TagFactory(tenant=tenant, name="Time Logging")
    contoso = ClientFactory(tenant=tenant, key="contoso", name="Contoso", tags=[tag])
    fabrikam = ClientFactory(tenant=tenant, key="fabrikam", name="Fabrikam")
    reset = AutomationFactory(tenant=tenant, key="reset-password", name="Reset password")
    onboard = AutomationFactory(tenant=tenant, key="onboard", name="Onboard user")
    return {
        "tag": tag,
        "contoso": contoso,
        "fabrikam": fabrikam,
        "reset": reset,
        "onboard": onboard,
    }


def _page(admin_client, tenant):
    response = admin_client.get(admin_url(tenant, "change"))
    assert response.status_code == 200
    return response


def _row(response, automation: Automation) -> str:
    """The automation inline's prefix of ``automation``'s row."""
    for inline in response.context["inline_admin_formsets"]:
        for form in inline.formset.forms:
            if form.instance.pk == automation.pk:
                return form.prefix
    raise AssertionError(f"no row for {automation}")


# --- "Saved. …" ------------------------------------------------------------------------------
def test_saving_lists_what_changed(admin_client, tenant, catalog):
    page = _page(admin_client, tenant)
    reset, onboard = _row(page, catalog["reset"]), _row(page, catalog["onboard"])
    data = changeform_data(
        page,
        time_logging_enabled="True",
        apply_to="tags",
        apply_tags=[str(catalog["tag"].pk)],
        **{f"{reset}-minutes": "20", f"{onboard}-log_time": None, "tag_set-1-name": "Ad-hoc"},
    )
    response = admin_client.post(admin_url(tenant, "change"), data, follow=True)
    assert (
        "Saved. Status: Off → On; Apply to: None → Based on Tag (Time Logging); "
        "Onboard user: real duration → off; Reset password: real duration → 20 minutes; "
        "Tag added: Ad-hoc." in " / ".join(messages_text(response))
    )

    page = _page(admin_client, tenant)
    data = changeform_data(
        page,
        apply_to="all",
        log_as="assignee",
        **{f"{_row(page, catalog['reset'])}-log_time": None, "name": "Acme"},
    )
    response = admin_client.post(admin_url(tenant, "change"), data, follow=True)
    assert (
        "Saved. Name: Acme MSP → Acme; Apply to: Based on Tag (Time Logging) → All Clients; "
        "Log time entries as: The user who started the automation → The ticket assignee; "
        "Reset password: 20 minutes → off." in " / ".join(messages_text(response))
    )


def test_saving_without_changes_says_so(admin_client, tenant, catalog):
    response = admin_client.post(
        admin_url(tenant, "change"), changeform_data(_page(admin_client, tenant)), follow=True
    )
    assert "Saved. Nothing changed." in " / ".join(messages_text(response))


def test_saving_the_specified_user_names_them(admin_client, tenant, catalog):
    with connectwise(member("timelogging", "Time", "Logging")):
        response = admin_client.post(
            admin_url(tenant, "change"),
            changeform_data(
                _page(admin_client, tenant),
                log_as="specified",
                specified_psa_user_ref="timelogging",
                specified_psa_user_name="",
            ),
            follow=True,
        )
    # The PSA is asked once the save has committed; what it says names the user.
    [saved] = [m for m in messages_text(response) if m.startswith("Saved.")]
    assert saved.startswith(
        "Saved. Log time entries as: The user who started the automation → A specified PSA "
        "user (timelogging)."
    )
    tenant.refresh_from_db()
    assert tenant.specified_psa_user_name == "Time Logging"


def test_an_invalid_save_lists_nothing(admin_client, tenant, catalog):
    data = changeform_data(_page(admin_client, tenant), apply_to="tags", apply_tags=[])
    response = admin_client.post(admin_url(tenant, "change"), data)
    assert response.status_code == 200  # the page again, with the error next to the tags
    assert response.context["adminform"].form.errors["apply_tags"] == [TAGS_REQUIRED]
    assert not any(m.startswith("Saved.") for m in " / ".join(messages_text(response)))


@pytest.mark.parametrize("button", ["_save", "_continue"])
def test_a_save_says_one_thing(admin_client, tenant, catalog, button):
    # Not Django's "… was changed successfully" beside the page's own message: one message.
    page = _page(admin_client, tenant)
    data = changeform_data(page, time_logging_enabled="True", apply_to="all", **{button: "1"})
    response = admin_client.post(admin_url(tenant, "change"), data, follow=True)
    [message] = messages_text(response)
    assert message.startswith("Saved. Status: Off → On; Apply to: None → All Clients.")
    assert "Time logging is on for all clients" in message
    assert "changed successfully" not in message


def test_a_save_that_needs_a_look_is_one_warning(admin_client, tenant, catalog):
    page = _page(admin_client, tenant)
    data = changeform_data(page, time_logging_enabled="True", apply_to="none")
    response = admin_client.post(admin_url(tenant, "change"), data, follow=True)
    [(message, level)] = [(str(m), m.level) for m in response.context["messages"]]
    assert level == messages_module.WARNING
    assert message.startswith("Saved. Status: Off → On.")
    assert "“Apply to” is None: nothing is logged" in message


def test_adding_a_tenant_says_one_thing(admin_client):
    page = admin_client.get(admin_url(Tenant, "add"))
    html = page.content.decode()
    assert 'name="_addanother"' not in html and 'name="_saveasnew"' not in html
    data = changeform_data(page, name="Globex MSP", time_zone="Europe/London")
    response = admin_client.post(admin_url(Tenant, "add"), data, follow=True)
    [message] = messages_text(response)
    assert message.startswith("Added “Globex MSP”. Time logging is off")


def test_the_auditor_reads_every_setting_as_a_value(client, tenant, catalog):
    from timelogging.services.roles import role_grant

    tenant_settings_set(tenant, tags=[catalog["tag"], TagFactory(tenant=tenant, name="VIP")])
    catalog["reset"].minutes = 20
    catalog["reset"].save()
    catalog["onboard"].log_time = False
    catalog["onboard"].save()
    auditor = User.objects.create_user("auditor", password="pw")
    role_grant(user=auditor, tenant=tenant, role="auditor")
    client.force_login(auditor)

    response = client.get(admin_url(tenant, "change"))
    assert response.status_code == 200
    html = response.content.decode()
    values = {
        capfirst(field.field["label"]): field.contents()
        for fieldset in response.context["adminform"]
        for line in fieldset
        for field in line
    }
    assert values == {
        "Name": "Acme MSP",
        "Time zone": "America/New York",
        "Status": "On: piadesk logs a time entry in the PSA when an automation completes.",
        "Apply to": "Based on Tag (Time Logging, VIP)",
        "Log time entries as": "A specified PSA user (Time Logging, timelogging)",
    }
    automations = html.split('id="automation_set-group"')[1].split("</fieldset>")[0]
    rows = {
        name: rule
        for name, rule in re.findall(
            r'<td class="field-name">\s*<p>([^<]*)</p>.*?'
            r'<td class="field-time_rule">\s*<p>([^<]*)</p>',
            automations,
            flags=re.S,
        )
    }
    assert rows == {"Onboard user": "Off", "Reset password": "20 minutes"}
    # Values, not inputs: nothing to type in, tick or choose.
    assert "<input" not in html.split('id="tenant_form"')[1].split("</form>")[0].replace(
        '<input type="hidden"', ""
    )


# --- the page --------------------------------------------------------------------------------
def test_the_page_has_the_panels_and_the_script(admin_client, tenant, catalog):
    html = _page(admin_client, tenant).content.decode()
    assert 'id="psa-connection-panel"' in html
    assert "Acme&#x27;s ConnectWise" in html and "Healthy" in html
    assert f"/admin/timelogging/tenant/{tenant.pk}/test-connection/" in html
    assert 'id="tenant-preview"' in html
    assert f'data-preview-url="/admin/timelogging/tenant/{tenant.pk}/preview/"' in html
    assert "timelogging/tenant_settings.js" in html
    assert "timelogging/tenant_settings.css" in html
    assert 'placeholder="real duration"' in html


def test_the_panel_says_why_a_connection_is_paused(admin_client, tenant):
    tenant.psaconnection_set.update(
        paused_at=timezone.now(), pause_reason="ConnectWise refused the API keys."
    )
    html = _page(admin_client, tenant).content.decode()
    assert "Paused" in html and "ConnectWise refused the API keys." in html


def test_the_panel_offers_to_add_a_connection_when_there_is_none(admin_client):
    tenant = TenantFactory()
    html = _page(admin_client, tenant).content.decode()
    assert "No PSA connection — " in html
    assert f"/admin/timelogging/psaconnection/add/?tenant={tenant.pk}" in html


def test_a_new_tenant_page_has_no_panels(admin_client):
    html = admin_client.get(admin_url(Tenant, "add")).content.decode()
    assert 'id="psa-connection-panel"' not in html
    assert 'id="tenant-preview"' not in html


# --- Test connection -------------------------------------------------------------------------
def test_test_connection_answers_json_for_the_script(admin_client, tenant):
    url = f"/admin/timelogging/tenant/{tenant.pk}/test-connection/"
    with connectwise() as mock:
        mock.get(f"{API}system/info", json={"version": "v2025.1"})
        response = admin_client.post(url, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert "Acme's ConnectWise" in response.json()["message"]


def test_test_connection_without_javascript_comes_back_with_a_message(admin_client, tenant):
    url = f"/admin/timelogging/tenant/{tenant.pk}/test-connection/"
    with responses.RequestsMock() as mock:
        mock.get(f"{SITE}/login/companyinfo/acme", status=401)
        response = admin_client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == admin_url(tenant, "change")
    [message] = [m for m in messages_text(response) if "Test of" in m]
    assert message.startswith("Test of “Acme's ConnectWise” failed:")


def test_test_connection_is_a_post_for_those_who_may_change(client, admin_client, tenant):
    url = f"/admin/timelogging/tenant/{tenant.pk}/test-connection/"
    assert admin_client.get(url).status_code == 405
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    client.force_login(viewer)
    assert client.post(url).status_code in (403, 404)


# --- Preview endpoint ------------------------------------------------------------------------
def _preview_data(admin_client, tenant, catalog, **changes):
    page = _page(admin_client, tenant)
    data = changeform_data(page)
    data.update(
        {
            "preview-client": str(catalog["contoso"].pk),
            "preview-automation": str(catalog["reset"].pk),
            "preview-started_by": "john.doe@demo-msp.example",
            "preview-ticket": "1001",
            "preview-duration": "5",
        }
    )
    rows = {"reset": _row(page, catalog["reset"])}
    for key, value in changes.items():
        key = key.replace("RESET", rows["reset"])
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def with_ticket(mock, ticket_id="1001"):
    """The preview checks the ticket typed in its form exists."""
    mock.get(f"{API}service/tickets/{ticket_id}", json={"id": int(ticket_id), "owner": None})


def _preview(admin_client, tenant, data, **headers):
    return admin_client.post(
        f"/admin/timelogging/tenant/{tenant.pk}/preview/",
        data,
        HTTP_ACCEPT=headers.get("accept", "application/json"),
    )


def test_preview_uses_the_settings_on_screen_not_the_saved_ones(admin_client, tenant, catalog):
    data = _preview_data(
        admin_client,
        tenant,
        catalog,
        time_logging_enabled="True",
        apply_to="all",
        **{"RESET-minutes": "20"},
    )
    with connectwise(JDOE) as mock:
        with_ticket(mock)
        response = _preview(admin_client, tenant, data)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["log"] is True
    assert (answer["outcome"], answer["headline"]) == ("logged", "Would be logged.")
    assert answer["minutes"] == 20
    assert answer["minutes_why"] == "set for “Reset password”"
    assert answer["user"] == {"ref": "jdoe", "name": "John Doe", "text": "John Doe (jdoe)"}
    assert answer["user_error"] == ""
    # A 5-minute run that ends now, logged as 20 minutes, would end in the future.
    assert "ConnectWise PSA refuses time in the future" in answer["shift"]
    start, end = (
        dt.datetime.fromisoformat(answer["start"]),
        dt.datetime.fromisoformat(answer["end"]),
    )
    assert end - start == dt.timedelta(minutes=20)
    assert end <= timezone.now()
    assert "Would be logged." in answer["html"] and "John Doe (jdoe)" in answer["html"]
    assert len(mock.calls) >= 1  # the member was looked up in the PSA
    # Nothing saved, nothing remembered.
    tenant.refresh_from_db()
    assert (tenant.time_logging_enabled, tenant.apply_to) == (False, Tenant.ApplyTo.NONE)
    assert Automation.objects.get(pk=catalog["reset"].pk).minutes is None
    assert not PSAUserMapping.objects.exists()
    # The look-ups count against the connection's request budget.
    assert RequestBudget.objects.get().used == len(mock.calls)


@pytest.mark.parametrize(
    ("changes", "skip_reason"),
    [
        ({}, "status_off"),
        ({"time_logging_enabled": "True"}, "apply_to_none"),
        (
            {"time_logging_enabled": "True", "apply_to": "tags", "preview-client": "FABRIKAM"},
            "client_not_in_scope",
        ),
        (
            {"time_logging_enabled": "True", "apply_to": "all", "RESET-log_time": None},
            "automation_off",
        ),
    ],
)
def test_preview_says_why_a_run_would_not_be_logged(
    admin_client, tenant, catalog, changes, skip_reason
):
    if changes.get("preview-client") == "FABRIKAM":
        changes = {**changes, "preview-client": str(catalog["fabrikam"].pk)}
    if changes.get("apply_to") == "tags":
        changes = {**changes, "apply_tags": [str(catalog["tag"].pk)]}
    data = _preview_data(admin_client, tenant, catalog, **changes)
    with responses.RequestsMock():  # no PSA request for a run that is not logged
        response = _preview(admin_client, tenant, data)
    answer = response.json()
    assert answer["log"] is False
    assert answer["skip_reason"] == skip_reason
    assert answer["reason"] == AutomationRun.SkipReason(skip_reason).label
    assert answer["reason"] in answer["html"]


def test_preview_reports_what_the_page_would_refuse(admin_client, tenant, catalog):
    data = _preview_data(
        admin_client,
        tenant,
        catalog,
        time_logging_enabled="True",
        apply_to="tags",
        apply_tags=[],
        **{"RESET-minutes": "0"},
    )
    answer = _preview(admin_client, tenant, data).json()
    assert answer["skip_reason"] == "client_not_in_scope"
    assert f"Tags: {TAGS_REQUIRED}" in answer["problems"]
    assert any(p.startswith("Reset password: Minutes: Enter a number") for p in answer["problems"])


def test_preview_of_the_ticket_assignee_and_an_unknown_ticket(admin_client, tenant, catalog):
    data = _preview_data(admin_client, tenant, catalog, time_logging_enabled="True", apply_to="all")
    data["log_as"] = "assignee"
    with connectwise() as mock:
        mock.get(
            f"{API}service/tickets/1001",
            json={"id": 1001, "owner": {"id": 7, "identifier": "asmith", "name": "Alice Smith"}},
        )
        mock.get(f"{API}service/tickets/999", status=404, json={"message": "not found"})
        answer = _preview(admin_client, tenant, data).json()
        assert answer["user"]["text"] == "Alice Smith (asmith)"
        data["preview-ticket"] = "999"
        answer = _preview(admin_client, tenant, data).json()
    # The settings log it, but the PSA would not take it: said in the error colour.
    assert answer["log"] is True and answer["user"] is None
    assert answer["outcome"] == "failed"
    assert answer["ticket_error"] == "ConnectWise has no ticket #999"
    assert "Would NOT be logged: the entry would fail." in answer["html"]
    assert "preview-failed" in answer["html"] and "Would be logged." not in answer["html"]
    data["preview-ticket"] = ""
    answer = _preview(admin_client, tenant, data).json()
    assert answer["user_error"] == "Enter a ticket id to look up its assignee."
    assert answer["outcome"] == "unchecked"


def test_preview_of_a_specified_user_checks_them_in_the_psa(admin_client, tenant, catalog):
    data = _preview_data(
        admin_client,
        tenant,
        catalog,
        time_logging_enabled="True",
        apply_to="all",
        log_as="specified",
        specified_psa_user_ref="timelogging",
        specified_psa_user_name="Time Logging",
    )
    with connectwise(member("timelogging", "Time", "Logging")) as mock:
        with_ticket(mock)
        answer = _preview(admin_client, tenant, data).json()
    assert answer["user"]["text"] == "Time Logging (timelogging)"
    assert answer["outcome"] == "logged"
    # Another PSA's user (e.g. from before a vendor switch) would hold every entry.
    data["specified_psa_user_ref"] = "nobody"
    with connectwise(member("timelogging", "Time", "Logging")) as mock:
        with_ticket(mock)
        answer = _preview(admin_client, tenant, data).json()
    assert answer["outcome"] == "held" and answer["user"] is None
    assert "is not a user of ConnectWise PSA" in answer["reason"]


def test_preview_shows_a_psa_failure_as_words(admin_client, tenant, catalog):
    data = _preview_data(admin_client, tenant, catalog, time_logging_enabled="True", apply_to="all")
    with responses.RequestsMock() as mock:
        mock.get(f"{SITE}/login/companyinfo/acme", status=503, body="down for maintenance")
        response = _preview(admin_client, tenant, data)
    assert response.status_code == 200
    answer = response.json()
    assert answer["log"] is True and answer["user"] is None
    assert answer["user_error"]


def test_preview_without_a_connection_says_so(admin_client, catalog, tenant):
    tenant.psaconnection_set.all().delete()
    data = _preview_data(admin_client, tenant, catalog, time_logging_enabled="True", apply_to="all")
    answer = _preview(admin_client, tenant, data).json()
    assert answer["log"] is True
    assert answer["outcome"] == "failed"
    assert answer["reason"] == (
        "The tenant has no active PSA connection, so the entry would fail: add one under PSA "
        "connections."
    )


def test_preview_input_errors_are_a_400_naming_the_field(admin_client, tenant, catalog):
    data = _preview_data(
        admin_client, tenant, catalog, **{"preview-duration": "0", "preview-ticket": "abc"}
    )
    response = _preview(admin_client, tenant, data)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"Run duration", "Ticket"}
    # Another tenant's client is not a choice.
    other = ClientFactory()
    data = _preview_data(admin_client, tenant, catalog, **{"preview-client": str(other.pk)})
    assert set(_preview(admin_client, tenant, data).json()["errors"]) == {"Client"}


def test_preview_without_javascript_is_a_page(admin_client, tenant, catalog):
    data = _preview_data(admin_client, tenant, catalog)
    response = _preview(admin_client, tenant, data, accept="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Would not be logged." in html
    assert AutomationRun.SkipReason.STATUS_OFF.label in html
    assert admin_url(tenant, "change") in html


def test_preview_is_a_post_for_those_who_may_change(client, admin_client, tenant, catalog):
    url = f"/admin/timelogging/tenant/{tenant.pk}/preview/"
    assert admin_client.get(url).status_code == 405
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    client.force_login(viewer)
    assert client.post(url, {}).status_code in (403, 404)


# --- the service -----------------------------------------------------------------------------
def _run(**overrides):
    values = {
        "client_tag_ids": frozenset(),
        "automation_name": "Reset password",
        "automation_log_time": True,
        "automation_minutes": None,
        "started_by": "john.doe@demo-msp.example",
        "ticket_id": "1001",
        "duration": dt.timedelta(minutes=5),
    }
    return PreviewRun(**{**values, **overrides})


ON = SettingsInForce(enabled=True, apply_to="all", apply_tag_ids=frozenset(), log_as="starter")


def test_the_run_ends_at_the_start_of_the_current_minute(tenant):
    with connectwise(JDOE) as mock:
        with_ticket(mock)
        preview = settings_preview(
            tenant=tenant, settings=ON, specified_ref="", specified_name="", run=_run(), now=NOW
        )
    assert (preview.start, preview.end) == (
        dt.datetime(2026, 5, 1, 12, 25, tzinfo=dt.UTC),
        dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC),
    )
    assert preview.shift == ""
    assert preview.window_text == "2026-05-01 12:25–12:30 UTC"
    assert preview.minutes_why == (
        "no minutes set for “Reset password”: the run's real duration, rounded up to whole minutes"
    )


def test_connectwise_moves_a_future_window_back(tenant):
    with connectwise(JDOE) as mock:
        with_ticket(mock)
        preview = settings_preview(
            tenant=tenant,
            settings=ON,
            specified_ref="",
            specified_name="",
            run=_run(automation_minutes=20),
            now=NOW,
        )
    assert (preview.start, preview.end) == (
        dt.datetime(2026, 5, 1, 12, 10, tzinfo=dt.UTC),
        dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC),
    )
    assert preview.shift == (
        "ConnectWise PSA refuses time in the future: the entry would end at 12:45, after now "
        "(12:30 UTC), so it is moved back to 12:10–12:30 UTC, keeping its 20 minutes."
    )


def test_an_unknown_starter_is_said_in_the_psas_words(tenant):
    with connectwise() as mock:  # no member has the e-mail
        with_ticket(mock)
        preview = settings_preview(
            tenant=tenant, settings=ON, specified_ref="", specified_name="", run=_run(), now=NOW
        )
    assert preview.outcome == "failed" and preview.headline.startswith("Would NOT be logged")
    assert preview.user is None
    assert preview.user_error.startswith(
        "No active ConnectWise PSA user has the e-mail john.doe@demo-msp.example"
    )


def test_a_staff_mapping_wins_as_when_posting(tenant):
    connection = tenant.psaconnection_set.get()
    PSAUserMapping.objects.create(
        tenant=tenant,
        connection=connection,
        email="john.doe@demo-msp.example",
        psa_user_ref="johnd",
        psa_user_name="John D.",
        source=PSAUserMapping.Source.MANUAL,
    )
    with connectwise() as mock:
        with_ticket(mock)
        preview = settings_preview(
            tenant=tenant, settings=ON, specified_ref="", specified_name="", run=_run(), now=NOW
        )
    assert preview.user_text == "John D. (johnd)"
    assert not [c for c in mock.calls if "members" in c.request.url]


def test_auditors_see_the_panel_but_not_the_controls(client, db):
    from tests.factories import PSAConnectionFactory, TenantFactory
    from tests.timelogging.tenancy import make_member

    tenant = TenantFactory()
    PSAConnectionFactory(tenant=tenant)
    client.force_login(make_member(tenant, "auditor"))
    response = client.get(f"/admin/timelogging/tenant/{tenant.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "psa-connection-panel" in html and "Healthy" in html
    assert 'id="psa-connection-test"' not in html
    assert 'id="tenant-preview-button"' not in html
