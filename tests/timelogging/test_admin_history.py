"""The history in the admin: runs, entries and attempts are viewable, never editable."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import AutomationRunFactory, PSAConnectionFactory, TimeEntryFactory
from tests.timelogging.admin_support import admin_url
from timelogging.models import AutomationRun, PostAttempt, StaffProfile, TimeEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry():
    entry = TimeEntryFactory(
        status=TimeEntry.Status.FAILED,
        psa_user_ref="jdoe",
        psa_user_name="John Doe",
        attempts=1,
        error="ConnectWise said: member jdoe cannot enter time on this board",
    )
    PostAttempt.objects.create(
        tenant=entry.tenant,
        entry=entry,
        number=1,
        started_at=timezone.now(),
        duration_ms=120,
        outcome="permanent",
        http_status=400,
        error="member cannot enter time",
        exchanges=[
            {
                "method": "POST",
                "url": "https://cw.example.com/time/entries",
                "status": 400,
                "duration_ms": 120,
                "request_excerpt": '{"chargeToId":1001,"member":{"identifier":"jdoe"}}',
                "response_excerpt": '{"code":"InvalidObject","message":"member cannot',
            }
        ],
    )
    return entry


def test_the_entry_page_shows_each_exchange_readable_and_collapsed(admin_client, entry):
    html = admin_client.get(admin_url(entry, "change")).content.decode()
    # One collapsed block per request, its summary the request line, the status and the time.
    assert html.count("<details>") == 1
    assert "<code>POST https://cw.example.com/time/entries</code>" in html
    assert "400 Bad Request" in html
    assert "120 ms" in html
    # JSON indented for reading; an excerpt cut mid-JSON shown as it came.
    assert "{\n  &quot;chargeToId&quot;: 1001,\n  &quot;member&quot;: {" in html
    cut = '{"code":"InvalidObject","message":"member cannot'.replace('"', "&quot;")
    assert cut in html


def test_a_posted_entry_links_its_ticket_in_the_psa(admin_client, entry):
    entry.status = TimeEntry.Status.POSTED
    entry.psa_ticket_url = "https://cw.example.com/ticket?service_recid=1001"
    entry.connection = PSAConnectionFactory(tenant=entry.tenant)
    entry.save()
    html = admin_client.get(admin_url(entry, "change")).content.decode()
    assert (
        f'<a href="https://cw.example.com/ticket?service_recid=1001" target="_blank" '
        f'rel="noopener noreferrer">Open ticket {entry.run.ticket_id} in ConnectWise PSA</a>'
    ) in html


def test_run_and_entry_pages_are_viewable(admin_client, entry):
    skipped = AutomationRunFactory(
        decision=AutomationRun.Decision.SKIP,
        skip_reason=AutomationRun.SkipReason.CLIENT_NOT_IN_SCOPE,
    )
    response = admin_client.get(admin_url(AutomationRun, "changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "The client carries none of the chosen tags" in html
    assert admin_url(entry, "change") in html  # the run links to its entry

    response = admin_client.get(admin_url(skipped, "change"))
    assert response.status_code == 200
    assert "The client carries none of the chosen tags" in response.content.decode()
    assert 'name="_save"' not in response.content.decode()  # read-only

    response = admin_client.get(admin_url(entry, "change"))
    html = response.content.decode()
    assert response.status_code == 200
    assert admin_url(entry.run, "change") in html
    assert "John Doe (jdoe)" in html
    assert "member cannot enter time" in html  # the attempt inline
    assert "https://cw.example.com/time/entries" in html
    assert 'name="_save"' not in html


@pytest.mark.parametrize("model", [AutomationRun, TimeEntry])
def test_history_refuses_add_change_and_delete(admin_client, entry, model):
    obj = entry if model is TimeEntry else entry.run
    assert admin_client.get(admin_url(model, "add")).status_code == 403
    assert admin_client.post(admin_url(model, "add"), {}).status_code == 403
    assert admin_client.post(admin_url(obj, "change"), {"_save": "Save"}).status_code == 403
    assert admin_client.post(admin_url(obj, "delete"), {"post": "yes"}).status_code == 403
    assert admin_client.get(admin_url(obj, "delete")).status_code == 403
    response = admin_client.get(admin_url(model, "changelist"))
    assert "delete_selected" not in response.content.decode()
    assert model.objects.filter(pk=obj.pk).exists()


def test_auditor_with_view_permission_can_browse(client, entry):
    auditor = User.objects.create_user("auditor", password="pw", is_staff=True)
    auditor.user_permissions.set(
        Permission.objects.filter(codename__in=["view_automationrun", "view_timeentry"])
    )
    StaffProfile.objects.create(user=auditor, tenant=entry.tenant)
    client.force_login(auditor)
    assert client.get(admin_url(TimeEntry, "changelist")).status_code == 200
    response = client.get(admin_url(entry, "change"))
    assert response.status_code == 200
    assert "member cannot enter time" in response.content.decode()  # with its attempts
    assert client.get(admin_url(entry.run, "change")).status_code == 200
    assert client.post(admin_url(entry, "change"), {}).status_code == 403


def test_search_and_filters(admin_client, entry):
    other = TimeEntryFactory(run=AutomationRunFactory(ticket_id="4242"), psa_entry_id="991")
    runs = admin_url(AutomationRun, "changelist")
    entries = admin_url(TimeEntry, "changelist")
    assert [r.pk for r in admin_client.get(runs, {"q": "4242"}).context["cl"].result_list] == [
        other.run.pk
    ]
    assert [
        r.pk for r in admin_client.get(runs, {"q": entry.run.run_id}).context["cl"].result_list
    ] == [entry.run.pk]
    for q in ("4242", "991", other.run.run_id):
        result = admin_client.get(entries, {"q": q}).context["cl"].result_list
        assert [e.pk for e in result] == [other.pk]
    result = admin_client.get(entries, {"status__exact": "failed"}).context["cl"].result_list
    assert [e.pk for e in result] == [entry.pk]
    result = admin_client.get(runs, {"decision__exact": "skip"}).context["cl"].result_list
    assert list(result) == []


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("model", [AutomationRun, TimeEntry])
def test_history_lists_do_not_grow_queries_per_row(admin_client, model):
    TimeEntryFactory.create_batch(3)
    AutomationRunFactory.create_batch(2, decision=AutomationRun.Decision.SKIP)
    few = _queries(admin_client, admin_url(model, "changelist"))
    TimeEntryFactory.create_batch(20)
    AutomationRunFactory.create_batch(10, decision=AutomationRun.Decision.SKIP)
    assert _queries(admin_client, admin_url(model, "changelist")) == few


def test_search_is_exact(admin_client):
    # Identifiers are matched whole; the client's and automation's names (searched in part)
    # hold none of the terms below.
    run = AutomationRunFactory(
        run_id="RUN-77",
        ticket_id="77",
        client__key="contoso",
        client__name="Contoso",
        automation__key="reset",
        automation__name="Reset",
    )
    runs = admin_url(AutomationRun, "changelist")
    assert [r.pk for r in admin_client.get(runs, {"q": " RUN-77 "}).context["cl"].result_list] == [
        run.pk
    ]
    for partial in ("RUN-7", "7", "run-77"):
        assert list(admin_client.get(runs, {"q": partial}).context["cl"].result_list) == []
