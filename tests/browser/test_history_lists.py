"""The history lists on a 1366×768 screen (issue 12): runs, time entries, the delivery queue and
the configuration history show realistic long names and PSA errors without scrolling sideways,
the long text cut to one line with the whole of it on hover; screenshots of each (and of an
entry's page, light and dark) are saved as test artifacts.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from tests.browser.conftest import logged_in_page
from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    PSAConnectionFactory,
    TenantFactory,
    TimeEntryFactory,
)
from timelogging.models import AutomationRun, ConfigChange, PostAttempt, PSAConnection, TimeEntry

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = [
    "Northwind Traders International Holdings (EMEA Managed Services Division)",
    "Contoso Pharmaceuticals Research & Development Laboratories GmbH",
    "Fabrikam Residences Property Management Association of Greater Springfield",
]
AUTOMATIONS = [
    "Reset password, unlock the account and notify the user's manager by e-mail",
    "Onboard a new employee: mailbox, licences, security groups and laptop",
]
ERRORS = [
    "ConnectWise refused the request: chargeToId: Ticket 104233 is closed and cannot accept "
    "time entries; reopen the ticket or log the time by hand on the follow-up ticket",
    "No active ConnectWise user has the e-mail marie-christine.vandenberghe-delacroix@"
    "northwind-traders-international.example: set that e-mail on the member in ConnectWise, or "
    "add a PSA user mapping for it.",
    "Gave up after 10 attempts: ConnectWise is having trouble (503 Service Unavailable) — "
    "the last answer was an HTML maintenance page",
]
STARTER = "marie-christine.vandenberghe-delacroix@northwind-traders-international.example"


@pytest.fixture
def busy_history(live_server):
    """Two tenants with long names, a month of runs and entries of every status with the
    PSA's long errors, configuration changes and a paused connection."""
    now = timezone.now()
    statuses = [s for s, _ in TimeEntry.Status.choices]
    for t, tenant_name in enumerate(
        ["Managed Services Provider of the Greater Metropolitan Area LLC", "Acme MSP"]
    ):
        tenant = TenantFactory(name=tenant_name, time_zone="America/New_York")
        connection = PSAConnectionFactory(tenant=tenant, name="ConnectWise production (na)")
        clients = [ClientFactory(tenant=tenant, name=name) for name in CLIENTS]
        automations = [AutomationFactory(tenant=tenant, name=name) for name in AUTOMATIONS]
        for i in range(30):
            started = now - dt.timedelta(hours=7 * i + t)
            run = AutomationRunFactory(
                tenant=tenant,
                client=clients[i % len(clients)],
                automation=automations[i % len(automations)],
                run_id=f"9f1c2e7a-5b8d-4c3e-a1f0-{i:012d}",
                ticket_id=str(104200 + i),
                started_by=STARTER,
                started_at=started,
                completed_at=started + dt.timedelta(seconds=17.08),
                decision=AutomationRun.Decision.SKIP if i % 7 == 3 else AutomationRun.Decision.LOG,
                skip_reason=AutomationRun.SkipReason.CLIENT_NOT_IN_SCOPE if i % 7 == 3 else "",
            )
            if run.decision == AutomationRun.Decision.SKIP:
                continue
            status = statuses[i % len(statuses)]
            failed = status in (TimeEntry.Status.FAILED, TimeEntry.Status.HELD)
            entry = TimeEntryFactory(
                run=run,
                status=status,
                connection=connection,
                psa_user_ref="mvandenberghe",
                psa_user_name="Marie-Christine Vandenberghe-Delacroix",
                psa_entry_id=str(884400 + i) if status == TimeEntry.Status.POSTED else "",
                error_class=("unresolved" if i % 2 else "permanent") if failed else "",
                error=ERRORS[i % len(ERRORS)] if failed else "",
                attempts=3 if failed else 1,
            )
            PostAttempt.objects.create(
                tenant=tenant,
                entry=entry,
                number=1,
                started_at=started,
                duration_ms=17_080,
                outcome=entry.error_class or "posted",
                http_status=400 if failed else 200,
                error=entry.error,
                exchanges=[
                    {
                        "method": "POST",
                        "url": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/time/entries",
                        "status": 400 if failed else 201,
                        "duration_ms": 17_080,
                        "request_excerpt": '{"chargeToId": 104233, "timeStart": "09:00"}',
                        "response_excerpt": '{"code": "InvalidObject", "message": "closed"}',
                    }
                ],
            )
        kind = ContentType.objects.get_for_model(PSAConnection)
        for i in range(8):
            ConfigChange.objects.create(
                tenant=tenant,
                content_type=kind,
                object_pk=str(connection.pk),
                object_repr=f"ConnectWise production (na) — {tenant_name}",
                action=ConfigChange.Action.UPDATE,
                changes={
                    "vendor": ["autotask", "connectwise"],
                    "pause_reason": ["", ERRORS[i % len(ERRORS)]],
                    "name": ["ConnectWise sandbox", "ConnectWise production (na)"],
                },
            )
        PSAConnectionFactory(
            tenant=tenant,
            is_active=False,
            name="ConnectWise (old keys)",
            paused_at=now,
            pause_reason="ConnectWise refused the credentials (401): the API member's keys "
            "were revoked or the company id is wrong; enter new keys and resume the connection",
        )


def history_pages() -> dict[str, str]:
    return {
        "runs": reverse("admin:timelogging_automationrun_changelist"),
        "entries": reverse("admin:timelogging_timeentry_changelist"),
        "entries-failed": reverse("admin:timelogging_timeentry_changelist")
        + "?status__exact=failed",
        "delivery-queue": reverse("admin:delivery_queue"),
        "configuration-history": reverse("admin:timelogging_configchange_changelist"),
    }


def widths(page: Page) -> dict[str, list[int]]:
    """[scroll width, client width] of the page and of the list's own scroller (Django wraps
    the table in div.results, which would scroll sideways on its own)."""
    return page.evaluate(
        """() => {
            const box = (e) => e ? [e.scrollWidth, e.clientWidth] : [0, 0];
            return {
                page: box(document.documentElement),
                results: box(document.querySelector('#changelist .results')),
            };
        }"""
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_history_lists_fit_1366_pixels(
    browser, live_server, admin_user, shots, busy_history, scheme
):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, color_scheme=scheme)
    try:
        page = logged_in_page(context, live_server, shots)
        for name, path in history_pages().items():
            page.goto(f"{live_server.url}{path}")
            shots(f"{name}-{scheme}")
            measured = widths(page)
            assert measured["page"][0] <= measured["page"][1], (name, measured)
            assert measured["results"][0] <= measured["results"][1], (name, measured)
            if name == "delivery-queue":
                expect(page.locator("#queue-failures")).to_contain_text(
                    "One user (no usable PSA user)"
                )
                continue
            expect(page.locator("#result_list tbody tr").first).to_be_visible()
            # Fitting is not squeezing: the list keeps most of the width, each name column
            # enough for a dozen characters, the filters their own 240 px.
            sizes = page.evaluate(
                """() => ({
                    list: document.querySelector('#changelist .results').clientWidth,
                    filters: document.querySelector('#changelist-filter').offsetWidth,
                    names: [...document.querySelectorAll(
                        '#result_list th[class*="column-client_name"],'
                        + ' #result_list th[class*="column-automation_name"],'
                        + ' #result_list th[class*="column-who"]'
                    )].map((th) => th.offsetWidth),
                })"""
            )
            assert sizes["list"] >= 900 and sizes["filters"] <= 240, (name, sizes)
            assert all(width >= 85 for width in sizes["names"]), (name, sizes)

        # An error is one line, cut, the whole of it on hover.
        page.goto(f"{live_server.url}{history_pages()['entries-failed']}")
        error = page.locator("td.field-error_line .piadesk-one-line").first
        title = error.get_attribute("title") or ""
        assert any(text in title for text in ERRORS), title
        box = error.evaluate("e => [e.scrollWidth, e.clientWidth, e.getClientRects().length]")
        assert box[0] > box[1] and box[2] == 1, box  # cut, on one line

        # The entry's page: the whole error, the exchange, the durations in seconds.
        page.locator("th.field-created_at a").first.click()
        whole = page.locator("div.form-row.field-error")
        expect(whole).to_be_visible()
        assert any(text in whole.inner_text() for text in ERRORS)
        assert "17.1 s" in page.content()
        shots(f"entry-page-{scheme}")
    finally:
        context.close()
