"""The Tenant Settings page in a real browser (Chromium through Playwright), against the live
server: configured like a person would, the fields that show and hide, the preview of unsaved
settings, errors next to their fields, and a run logged with the saved settings end to end.

The tenant's PSA is the ConnectWise sandbox served by the same live server (members jdoe, John
Doe, and timelogging, "Time Logging"; ticket 1001 owned by jdoe).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import pytest
import requests
from django.utils import timezone

from psa.sandbox.models import SandboxTimeEntry
from tests.browser.conftest import logged_in_page
from tests.e2e.conftest import Worker, wait_for
from tests.factories import tenant_settings_set
from timelogging.forms import MINUTES_RANGE, PSA_USER_REQUIRED, TAGS_REQUIRED
from timelogging.management.sandbox import sandbox_connection_save
from timelogging.models import (
    Automation,
    Client,
    PSAUserMapping,
    Tag,
    Tenant,
    TenantAPIKey,
    TimeEntry,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Without playwright installed the module is skipped (tests/browser/conftest.py says why, and
# fails the run in CI).
expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.django_db(transaction=True)

JDOE = "john.doe@demo-msp.example"


@pytest.fixture
def fresh_tenant(live_server):
    """A tenant as the automation service left it: clients and automations known from runs,
    a ConnectWise connection, and no settings yet (status No, apply to None)."""
    tenant = Tenant.objects.create(name="Acme MSP")
    for key, name in (("contoso", "Contoso"), ("fabrikam", "Fabrikam"), ("northwind", "Northwind")):
        Client.objects.create(tenant=tenant, key=key, name=name)
    Automation.objects.create(tenant=tenant, key="reset-password", name="Reset password")
    Automation.objects.create(tenant=tenant, key="onboard-user", name="Onboard user")
    sandbox_connection_save(tenant=tenant, vendor="connectwise", base_url=live_server.url)
    return tenant


def settings_url(live_server, tenant: Tenant) -> str:
    return f"{live_server.url}/admin/timelogging/tenant/{tenant.pk}/change/"


def automation_row(page: Page, name: str):
    """The row of "Time logging per automation" whose automation is ``name``."""
    return page.locator("#automation_set-group tbody tr.form-row").filter(
        has=page.locator(f'input[name$="-name"][value="{name}"]')
    )


def messages(page: Page) -> str:
    return page.locator("ul.messagelist").inner_text()


def choose_tag(page: Page, field: str, tag: str) -> None:
    """Django's two-box chooser (a client's tags): pick the tag on the left, move it to
    "Chosen"."""
    page.select_option(f"#id_{field}_from", label=tag)
    page.click(f"#id_{field}_add")


def tick_tag(page: Page, tag: str) -> None:
    """The tenant page's tag list: tick the tag's box."""
    page.locator("#id_apply_tags").get_by_label(tag, exact=True).check()


def switch_on(page: Page) -> None:
    status = page.get_by_role("switch", name="Status")
    status.check()
    expect(status).to_be_checked()
    expect(page.locator(".field-time_logging_enabled .piadesk-switch-on")).to_be_visible()


def preview_answer(page: Page):
    page.click("#tenant-preview-button")
    answer = page.locator("#tenant-preview-result .preview-answer")
    expect(answer).to_be_visible()
    return answer


# --- the main flow ---------------------------------------------------------------------------
def test_configure_time_logging_like_a_person_and_see_the_entry(
    admin_page: Page, live_server, fresh_tenant, shots
):
    page, tenant = admin_page, fresh_tenant
    page.goto(settings_url(live_server, tenant))
    expect(page.locator("#psa-connection-panel")).to_contain_text("ConnectWise PSA")
    expect(page.locator("#psa-connection-panel")).to_contain_text("Healthy")
    shots("fresh-settings")

    # 1. A "Time Logging" tag, created in the Tags table of the page.
    page.fill("#id_tag_set-0-name", "Time Logging")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("Saved. Tag added: Time Logging.")
    tag = Tag.objects.get(tenant=tenant)
    assert tag.name == "Time Logging"
    shots("tag-created")

    # 2. Two clients tagged on their own pages, found in the clients list.
    for key in ("contoso", "northwind"):
        page.goto(f"{live_server.url}/admin/timelogging/client/?tenant__id__exact={tenant.pk}")
        page.get_by_role("link", name=key, exact=True).click()
        choose_tag(page, "tags", "Time Logging")
        page.click("input[name=_save]")
        expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    assert set(tag.clients.values_list("key", flat=True)) == {"contoso", "northwind"}
    shots("clients-tagged")

    # 3. The settings, as the article describes them.
    page.goto(settings_url(live_server, tenant))
    switch_on(page)
    page.get_by_role("radio", name="Based on Tag").check()
    expect(page.locator(".form-row.field-apply_tags")).to_be_visible()
    tick_tag(page, "Time Logging")
    page.get_by_role("radio", name="A specified PSA user").check()
    search = page.locator("#id_specified_psa_user_ref_search")
    expect(search).to_be_visible()
    search.fill("time")
    option = page.get_by_role("option", name=re.compile(r"Time Logging .*\(timelogging\)"))
    option.click()
    expect(page.locator("#id_specified_psa_user_ref")).to_have_value("timelogging")
    expect(page.locator("#id_specified_psa_user_name")).to_have_value("Time Logging")
    expect(page.locator("#id_specified_psa_user_ref_results li")).to_have_count(0)
    automation_row(page, "Reset password").locator('input[name$="-minutes"]').fill("20")
    shots("settings-filled")

    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist li")).to_have_count(1)  # one message for one save
    expect(page.locator("ul.messagelist")).to_contain_text(
        "Saved. Status: Off → On; Apply to: None → Based on Tag (Time Logging); "
        "Log time entries as: The user who started the automation → A specified PSA user "
        "(Time Logging, timelogging); Reset password: real duration → 20 minutes."
    )
    shots("saved")
    tenant.refresh_from_db()
    assert tenant.time_logging_enabled is True
    assert tenant.apply_to == Tenant.ApplyTo.TAGS
    assert list(tenant.apply_tags.all()) == [tag]
    assert tenant.log_as == Tenant.LogAs.SPECIFIED
    assert (tenant.specified_psa_user_ref, tenant.specified_psa_user_name) == (
        "timelogging",
        "Time Logging",
    )
    assert Automation.objects.get(tenant=tenant, key="reset-password").minutes == 20
    assert Automation.objects.get(tenant=tenant, key="onboard-user").minutes is None

    # 4. The automation service reports a run; the real worker posts it.
    _, key = TenantAPIKey.objects.create_key(tenant=tenant, name="automation service")
    started = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    response = requests.post(
        f"{live_server.url}/api/v1/automation-runs/",
        json={
            "run_id": "browser-run-1",
            "automation": {"key": "reset-password", "name": "Reset password"},
            "client": {"key": "contoso", "name": "Contoso"},
            "ticket_id": "1001",
            "started_by": JDOE,
            "started_at": started.isoformat(),
            "completed_at": (started + dt.timedelta(minutes=3)).isoformat(),
            "summary": "Reset the password of jane@contoso.example",
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    worker = Worker(workers=1)
    worker.start()
    try:
        entry = wait_for(
            lambda: TimeEntry.objects.filter(status=TimeEntry.Status.POSTED).first(),
            timeout=45,
            what="the entry to be posted",
        )
    finally:
        worker.stop()
    posted = SandboxTimeEntry.objects.get()
    assert posted.member.identifier == "timelogging"
    assert entry.psa_entry_id == str(posted.pk)
    assert posted.time_end is not None
    assert posted.time_end - posted.time_start == dt.timedelta(minutes=20)

    # 5. The history shows it: posted, as the specified user, 20 minutes, with the PSA's id.
    page.goto(f"{live_server.url}/admin/timelogging/timeentry/?q=browser-run-1")
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-status_badge")).to_have_text(f"Posted #{entry.psa_entry_id}")
    user = row.locator("td.field-psa_user_line .piadesk-one-line")
    expect(user).to_have_text("Time Logging")
    expect(user).to_have_attribute("title", "Time Logging (timelogging)")
    expect(row.locator("td.field-minutes")).to_have_text("20")
    expect(row.locator("td.field-client_name")).to_have_text("Contoso")
    expect(row.locator("td.field-automation_name")).to_have_text("Reset password")
    shots("entry-posted")


# --- fields shown when they apply ------------------------------------------------------------
def test_fields_show_only_when_they_apply_and_all_show_without_javascript(
    browser, admin_page: Page, live_server, fresh_tenant, shots
):
    page = admin_page
    page.goto(settings_url(live_server, fresh_tenant))
    tags_row = page.locator(".form-row.field-apply_tags")
    user_row = page.locator(".form-row.field-specified_psa_user_ref")
    picker = page.locator("#id_specified_psa_user_ref_search")
    # As saved: Apply to None, Log as the starter.
    expect(tags_row).to_be_hidden()
    expect(user_row).to_be_hidden()
    expect(picker).to_be_hidden()
    shots("defaults")

    page.get_by_role("radio", name="Based on Tag").check()
    expect(tags_row).to_be_visible()
    page.get_by_role("radio", name="All Clients").check()
    expect(tags_row).to_be_hidden()

    page.get_by_role("radio", name="A specified PSA user").check()
    expect(user_row).to_be_visible()
    expect(picker).to_be_visible()
    shots("specified-user")
    page.get_by_role("radio", name="The ticket assignee").check()
    expect(user_row).to_be_hidden()
    expect(picker).to_be_hidden()

    # The automation table reads as a table of "Log time" + minutes (empty: real duration).
    row = automation_row(page, "Reset password")
    expect(row.locator('input[name$="-minutes"]')).to_have_attribute("placeholder", "real duration")
    expect(page.locator("#automation_set-group thead")).to_contain_text("Log time")
    row.locator('input[name$="-log_time"]').uncheck()
    expect(row).to_have_class(re.compile(r"\bautomation-off\b"))

    # Without JavaScript: every field is on the page, and the preview is a plain form post.
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1300, "height": 900}
    )
    try:
        bare = logged_in_page(context, live_server, shots)
        bare.goto(settings_url(live_server, fresh_tenant))
        for selector in (
            "#id_apply_tags",
            "#id_specified_psa_user_ref",
            "#id_specified_psa_user_name",
            ".form-row.field-apply_tags",
            ".form-row.field-specified_psa_user_ref",
            "#psa-connection-panel button",
            "#tenant-preview-button",
        ):
            expect(bare.locator(selector)).to_be_visible()
        shots("without-javascript", bare)
        bare.check("input[name=apply_to][value=all]")
        bare.check("input[name=time_logging_enabled]")  # the switch is a plain checkbox
        bare.select_option("#id_preview-automation", label="Reset password")
        bare.fill("#id_preview-started_by", JDOE)
        bare.click("#tenant-preview-button")
        expect(bare.locator(".preview-answer")).to_contain_text("Would be logged")
        expect(bare.locator(".preview-user")).to_contain_text("John Doe (jdoe)")
        shots("preview-without-javascript", bare)
    finally:
        context.close()
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.apply_to == Tenant.ApplyTo.NONE  # previewed, not saved


# --- preview -----------------------------------------------------------------------------------
def test_preview_answers_for_the_unsaved_settings_on_screen(
    admin_page: Page, live_server, fresh_tenant, shots
):
    page, tenant = admin_page, fresh_tenant
    Tag.objects.create(tenant=tenant, name="Time Logging").clients.add(
        Client.objects.get(key="contoso")
    )
    page.goto(settings_url(live_server, tenant))
    # Started by: the signed-in user's e-mail to begin with.
    expect(page.locator("#id_preview-started_by")).to_have_value("admin@example.com")
    page.fill("#id_preview-started_by", JDOE)
    page.select_option("#id_preview-client", label="Contoso")
    page.select_option("#id_preview-automation", label="Reset password")

    # As saved: status No.
    answer = preview_answer(page)
    expect(answer).to_contain_text("Would not be logged.")
    expect(answer).to_contain_text("Automated time logging is off for the tenant")
    shots("preview-status-off")

    # Unsaved: Yes, all clients, the starter, the run's real duration (5 minutes).
    switch_on(page)
    page.get_by_role("radio", name="All Clients").check()
    answer = preview_answer(page)
    expect(answer).to_contain_text("Would be logged.")
    expect(answer.locator(".preview-minutes")).to_contain_text("5 minutes")
    expect(answer.locator(".preview-minutes")).to_contain_text("the run's real duration")
    expect(answer.locator(".preview-user")).to_contain_text("John Doe (jdoe)")
    expect(answer.locator(".preview-window")).to_contain_text("UTC")
    expect(answer.locator(".preview-shift")).to_have_count(0)
    shots("preview-logged")

    # 20 minutes for a 5-minute run that ends now: ConnectWise refuses future time.
    automation_row(page, "Reset password").locator('input[name$="-minutes"]').fill("20")
    answer = preview_answer(page)
    expect(answer.locator(".preview-minutes")).to_contain_text("20 minutes")
    expect(answer.locator(".preview-shift")).to_contain_text(
        "ConnectWise PSA refuses time in the future"
    )
    expect(answer.locator(".preview-shift")).to_contain_text("keeping its 20 minutes")

    # Based on a tag that Fabrikam does not carry.
    page.get_by_role("radio", name="Based on Tag").check()
    tick_tag(page, "Time Logging")
    page.select_option("#id_preview-client", label="Fabrikam")
    answer = preview_answer(page)
    expect(answer).to_contain_text("Would not be logged.")
    expect(answer).to_contain_text("The client carries none of the chosen tags")
    page.select_option("#id_preview-client", label="Contoso")
    expect(preview_answer(page)).to_contain_text("Would be logged.")

    # The ticket's assignee, read from the PSA; an unknown ticket is said in words.
    page.get_by_role("radio", name="The ticket assignee").check()
    page.fill("#id_preview-ticket", "1001")
    expect(preview_answer(page).locator(".preview-user")).to_contain_text("John Doe (jdoe)")
    page.fill("#id_preview-ticket", "999999")
    answer = preview_answer(page)
    # Not "Would be logged" in green: the entry would fail, in the error colour, with the fix.
    expect(answer).to_have_class("preview-answer preview-failed")
    expect(answer.locator(".preview-headline")).to_have_text(
        "Would NOT be logged: the entry would fail."
    )
    expect(answer.locator(".preview-reason")).to_contain_text("check the ticket number")
    ticket = answer.locator(".preview-ticket-error")
    expect(ticket).to_be_visible()
    expect(ticket).not_to_be_empty()
    error_colour = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--error-fg').trim()"
    )
    headline_colour = answer.locator(".preview-headline").evaluate("e => getComputedStyle(e).color")
    swatch = page.evaluate(
        "c => { const s = document.createElement('span'); s.style.color = c;"
        " document.body.append(s); const v = getComputedStyle(s).color; s.remove(); return v; }",
        error_colour,
    )
    assert headline_colour == swatch
    shots("preview-unknown-ticket")

    # Switched off on screen.
    automation_row(page, "Reset password").locator('input[name$="-log_time"]').uncheck()
    answer = preview_answer(page)
    expect(answer).to_contain_text("Time logging is switched off for this automation")

    # Nothing was saved, and the look-ups wrote nothing.
    tenant.refresh_from_db()
    assert (tenant.time_logging_enabled, tenant.apply_to) == (False, Tenant.ApplyTo.NONE)
    assert Automation.objects.get(key="reset-password").minutes is None
    assert not PSAUserMapping.objects.exists()


def test_test_connection_answers_in_the_panel(admin_page: Page, live_server, fresh_tenant, shots):
    page = admin_page
    page.goto(settings_url(live_server, fresh_tenant))
    page.locator("#psa-connection-panel").get_by_role("button", name="Test connection").click()
    result = page.locator("#psa-connection-test-result")
    expect(result).to_contain_text("Connected to")
    expect(result).to_have_class(re.compile(r"\bok\b"))
    assert page.url == settings_url(live_server, fresh_tenant)  # no reload, nothing lost
    shots("connection-tested")
    page.locator("#psa-connection-panel").get_by_role("link", name="Edit connection").click()
    expect(page).to_have_url(re.compile(r"/admin/timelogging/psaconnection/\d+/change/$"))


# --- errors next to their fields ---------------------------------------------------------------
def test_errors_show_next_to_the_field_they_concern(
    admin_page: Page, live_server, fresh_tenant, shots
):
    page, tenant = admin_page, fresh_tenant
    Tag.objects.create(tenant=tenant, name="Time Logging")
    page.goto(settings_url(live_server, tenant))
    switch_on(page)
    page.get_by_role("radio", name="Based on Tag").check()  # and no tag chosen
    page.get_by_role("radio", name="A specified PSA user").check()  # and nobody chosen
    automation_row(page, "Onboard user").locator('input[name$="-minutes"]').fill("0")
    page.click("input[name=_save]")

    expect(page.locator(".errornote")).to_be_visible()
    shots("errors")
    tags_row = page.locator(".form-row.field-apply_tags")
    expect(tags_row).to_be_visible()
    expect(tags_row.locator(".errorlist")).to_have_text(TAGS_REQUIRED)
    user_box = page.locator(".form-row.field-specified_psa_user_ref")
    expect(user_box).to_be_visible()
    expect(
        user_box.locator("div:has(> .fieldBox.field-specified_psa_user_ref) > .errorlist")
    ).to_have_text(PSA_USER_REQUIRED)
    row = automation_row(page, "Onboard user")
    expect(row.locator("td.field-minutes .errorlist")).to_have_text(MINUTES_RANGE)
    expect(automation_row(page, "Reset password").locator(".errorlist")).to_have_count(0)
    # What was typed is still on screen; nothing was saved.
    expect(page.get_by_role("radio", name="Based on Tag")).to_be_checked()
    tenant.refresh_from_db()
    assert (tenant.time_logging_enabled, tenant.apply_to) == (False, Tenant.ApplyTo.NONE)


# --- how the page reads (issue 12) -------------------------------------------------------------
def test_status_switch_tag_list_and_one_message_at_1366(
    browser, live_server, admin_user, fresh_tenant, shots
):
    tenant = fresh_tenant
    for name in ("Time Logging", "VIP", "Managed Print", "After hours", "Servers"):
        Tag.objects.create(tenant=tenant, name=name)
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = logged_in_page(context, live_server, shots)
        page.goto(settings_url(live_server, tenant))
        # One tenant at a time: neither "Save and add another" nor "Save as new".
        expect(page.locator("input[name=_addanother]")).to_have_count(0)
        expect(page.locator("input[name=_saveasnew]")).to_have_count(0)
        expect(page.locator("input[name=_save]")).to_be_visible()

        # Status: a switch whose words follow it.
        status = page.get_by_role("switch", name="Status")
        expect(status).not_to_be_checked()
        expect(page.locator(".field-time_logging_enabled .piadesk-switch-off")).to_be_visible()
        expect(page.locator(".field-time_logging_enabled .piadesk-switch-on")).to_be_hidden()
        page.locator(".field-time_logging_enabled .piadesk-switch-track").click()  # the drawing
        expect(status).to_be_checked()
        expect(page.locator(".field-time_logging_enabled .piadesk-switch-on")).to_have_text("On")

        # Tags: a compact list of boxes, no two-box chooser, no "Hold down Control".
        page.get_by_role("radio", name="Based on Tag").check()
        tags = page.locator("#id_apply_tags")
        expect(tags.get_by_role("checkbox")).to_have_count(5)
        expect(page.locator(".selector")).to_have_count(0)
        expect(page.locator(".field-apply_tags")).not_to_contain_text("Hold down")
        assert tags.bounding_box()["height"] < 80  # five tags in a couple of rows
        tick_tag(page, "VIP")
        tick_tag(page, "Time Logging")
        shots("switch-and-tags")

        page.click("input[name=_continue]")
        expect(page.locator("ul.messagelist li")).to_have_count(1)
        expect(page.locator("ul.messagelist")).to_contain_text(
            "Saved. Status: Off → On; Apply to: None → Based on Tag (Time Logging, VIP)."
        )
        expect(page.get_by_role("switch", name="Status")).to_be_checked()
        shots("saved-one-message")
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    finally:
        context.close()
    tenant.refresh_from_db()
    assert tenant.time_logging_enabled
    assert set(tenant.apply_tags.values_list("name", flat=True)) == {"Time Logging", "VIP"}


def test_the_auditor_reads_the_settings_as_values(browser, live_server, fresh_tenant, shots):
    from django.contrib.auth.models import User

    from timelogging.services.roles import role_grant

    tenant = fresh_tenant
    tag = Tag.objects.create(tenant=tenant, name="Time Logging")
    Tag.objects.create(tenant=tenant, name="VIP")
    tenant_settings_set(tenant, tags=[tag])
    Automation.objects.filter(key="reset-password").update(minutes=20)
    Automation.objects.filter(key="onboard-user").update(log_time=False)
    auditor = User.objects.create_user("auditor", password="auditor-password")
    role_grant(user=auditor, tenant=tenant, role="auditor")
    assert User.objects.get(pk=auditor.pk).has_perm("timelogging.view_tenant")

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = logged_in_page(
            context, live_server, shots, username="auditor", password="auditor-password"
        )
        page.goto(settings_url(live_server, tenant))
        expect(page.locator("h1")).to_have_text("View tenant settings")
        form = page.locator("#tenant_form")
        expect(form).to_contain_text("On: piadesk logs a time entry in the PSA")
        expect(form).to_contain_text("Based on Tag (Time Logging)")
        expect(form).to_contain_text("A specified PSA user (Time Logging, timelogging)")
        expect(form).to_contain_text("America/New York")
        automations = page.locator("#automation_set-group")
        expect(automations.locator("tr").filter(has_text="Reset password")).to_contain_text(
            "20 minutes"
        )
        expect(automations.locator("tr").filter(has_text="Onboard user")).to_contain_text("Off")
        expect(automations.locator("tr").filter(has_text="Reset password")).not_to_contain_text(
            "real duration"
        )
        # Values, not inputs: nothing to type, tick or choose, and no preview or test button.
        expect(form.locator("input:not([type=hidden]), select, textarea")).to_have_count(0)
        expect(page.locator("#tenant-preview-button")).to_have_count(0)
        expect(page.get_by_role("button", name="Test connection")).to_have_count(0)
        shots("auditor-tenant-page")
    finally:
        context.close()
