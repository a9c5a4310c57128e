"""Operations in the admin: retry failed entries, pause/resume a connection, the queue page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from tests.factories import AutomationRunFactory, PSAConnectionFactory, TimeEntryFactory
from timelogging.models import PSAConnection, StaffProfile, TimeEntry

pytestmark = pytest.mark.django_db


def entry(tenant, **kwargs):
    return TimeEntryFactory(run=AutomationRunFactory(tenant=tenant), **kwargs)


def test_retry_action_requeues_failed_entries_only(admin_client, tenant):
    failed = entry(tenant, status="failed", error_class="permanent", counted_attempts=3)
    posted = entry(tenant, status="posted")
    url = reverse("admin:timelogging_timeentry_changelist")
    response = admin_client.post(
        url,
        {"action": "retry_entries", "_selected_action": [failed.pk, posted.pk]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "1 entry queued for another try. 1 posted, discarded or being posted" in text
    failed.refresh_from_db()
    posted.refresh_from_db()
    assert (failed.status, failed.counted_attempts) == ("pending", 0)
    assert posted.status == "posted"


def test_auditors_cannot_retry(client, tenant):
    auditor = User.objects.create_user("auditor", password="x", is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_timeentry"))
    StaffProfile.objects.create(user=auditor, tenant=tenant)
    client.force_login(auditor)
    failed = entry(tenant, status="failed")
    url = reverse("admin:timelogging_timeentry_changelist")
    page = client.get(url)
    assert page.status_code == 200
    assert "retry_entries" not in page.content.decode()
    client.post(url, {"action": "retry_entries", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_pause_and_resume_from_the_admin(admin_client, tenant):
    connection = PSAConnectionFactory(tenant=tenant)
    waiting = entry(tenant)
    url = reverse("admin:timelogging_psaconnection_changelist")
    admin_client.post(url, {"action": "pause_connections", "_selected_action": [connection.pk]})
    connection.refresh_from_db()
    waiting.refresh_from_db()
    assert connection.paused_at is not None and waiting.status == "held"
    page = admin_client.get(url).content.decode()
    assert "Paused since" in page

    admin_client.post(url, {"action": "resume_connections", "_selected_action": [connection.pk]})
    connection.refresh_from_db()
    waiting.refresh_from_db()
    assert connection.paused_at is None and waiting.status == "pending"


def test_queue_page_shows_counts_oldest_and_failures(admin_client, tenant):
    PSAConnectionFactory(tenant=tenant)
    entry(tenant)
    entry(tenant, status="failed", error_class="unresolved")
    entry(tenant, status="held", error_class="configuration")
    PSAConnection.objects.update(paused_at="2026-01-01T00:00:00Z", pause_reason="401 keys")
    response = admin_client.get(reverse("admin:delivery_queue"))
    assert response.status_code == 200
    statuses = {s["label"]: s["count"] for s in response.context["statuses"]}
    assert statuses["Pending"] == 1
    assert statuses["Failed (needs a person)"] == 1
    assert statuses["Held (connection paused)"] == 1
    failures = {f["value"]: (f["label"], f["count"]) for f in response.context["failures"]}
    assert failures == {
        "unresolved": ("One user (no usable PSA user)", 1),
        "configuration": ("The connection (credentials, permissions, settings)", 1),
    }
    html = response.content.decode()
    assert "401 keys" in html
    # Labels, never the codes: the links carry the code, the text says it in words.
    assert ">unresolved<" not in html and ">configuration<" not in html
    assert 'href="/admin/timelogging/timeentry/?error_class=unresolved"' in html
    assert response.context["oldest_waiting"] == TimeEntry.objects.earliest("created_at").created_at


def test_connection_limits_are_editable(admin_client, tenant):
    connection = PSAConnectionFactory(tenant=tenant)
    page = admin_client.get(reverse("admin:timelogging_psaconnection_change", args=[connection.pk]))
    html = page.content.decode()
    assert 'name="requests_per_hour"' in html and 'name="max_concurrency"' in html
    assert "Healthy" in html


# --- operator control (issue 11) ---------------------------------------------------------------
def test_retry_selected_is_recorded_with_who(admin_client, tenant):
    from django.contrib.contenttypes.models import ContentType

    from timelogging.models import ConfigChange

    held = entry(tenant, status="held")
    url = reverse("admin:timelogging_timeentry_changelist")
    admin_client.post(url, {"action": "retry_entries", "_selected_action": [held.pk]})
    [row] = ConfigChange.objects.filter(
        content_type=ContentType.objects.get_for_model(TimeEntry), object_id=held.pk
    )
    assert row.actor.username == "admin"
    assert row.additional_data["operation"] == "retry"


def test_discard_action_asks_for_a_reason_first(admin_client, tenant):
    failed = entry(tenant, status="failed")
    url = reverse("admin:timelogging_timeentry_changelist")
    page = admin_client.post(url, {"action": "discard_entries", "_selected_action": [failed.pk]})
    assert page.status_code == 200 and 'name="reason"' in page.content.decode()
    failed.refresh_from_db()
    assert failed.status == "failed"
    # Confirmed without a reason: refused, nothing discarded.
    data = {"action": "discard_entries", "_selected_action": [failed.pk], "confirm": "yes"}
    page = admin_client.post(url, {**data, "reason": ""}, follow=True)
    assert "Say why" in page.content.decode()
    failed.refresh_from_db()
    assert failed.status == "failed"
    page = admin_client.post(url, {**data, "reason": "Logged by hand"}, follow=True)
    assert "1 entry discarded" in page.content.decode()
    failed.refresh_from_db()
    assert failed.status == "discarded" and "Logged by hand" in failed.error


def test_entry_page_buttons_operate_and_list_what_was_done(admin_client, tenant):
    failed = entry(tenant, status="failed")
    change = reverse("admin:timelogging_timeentry_change", args=[failed.pk])
    page = admin_client.get(change).content.decode()
    assert 'id="operator-actions"' in page
    for value in ("retry", "redecide", "discard"):
        assert f'value="{value}"' in page
    operate = reverse("admin:timelogging_timeentry_operate", args=[failed.pk])
    assert admin_client.get(operate).status_code == 405
    response = admin_client.post(operate, {"operation": "retry", "reason": "PSA back"})
    assert response.status_code == 302 and response.url == change
    failed.refresh_from_db()
    assert failed.status == "pending"
    page = admin_client.get(change).content.decode()
    assert 'id="entry-operations"' in page and "Retried" in page and "PSA back" in page


def test_posted_entries_have_no_buttons(admin_client, tenant):
    posted = entry(tenant, status="posted")
    page = admin_client.get(reverse("admin:timelogging_timeentry_change", args=[posted.pk]))
    assert 'id="operator-actions"' not in page.content.decode()


def test_auditors_see_discarded_entries_but_no_buttons(client, tenant):
    auditor = User.objects.create_user("auditor", password="x", is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_timeentry"))
    StaffProfile.objects.create(user=auditor, tenant=tenant)
    client.force_login(auditor)
    failed = entry(tenant, status="failed")
    discarded = entry(tenant, status="discarded", error="Discarded by admin: duplicate")
    page = client.get(reverse("admin:timelogging_timeentry_change", args=[failed.pk]))
    assert 'id="operator-actions"' not in page.content.decode()
    operate = reverse("admin:timelogging_timeentry_operate", args=[failed.pk])
    assert client.post(operate, {"operation": "retry"}).status_code == 403
    failed.refresh_from_db()
    assert failed.status == "failed"
    page = client.get(reverse("admin:timelogging_timeentry_change", args=[discarded.pk]))
    text = page.content.decode()
    assert "Discarded (never posted)" in text and "duplicate" in text


def test_another_tenants_entry_cannot_be_operated(client, tenant):
    from tests.factories import TenantFactory

    staff = User.objects.create_user("staff", password="x", is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(codename="view_timeentry"),
        Permission.objects.get(codename="retry_timeentry"),
    )
    StaffProfile.objects.create(user=staff, tenant=tenant)
    client.force_login(staff)
    other = entry(TenantFactory(), status="failed")
    operate = reverse("admin:timelogging_timeentry_operate", args=[other.pk])
    client.post(operate, {"operation": "discard", "reason": "x"})
    other.refresh_from_db()
    assert other.status == "failed"


def test_history_filters_operations_on_time_entries(admin_client, tenant):
    """Retry, Re-decide and Discard are recorded on time entries: the history's "what"
    filter offers them, and choosing it lists only those rows."""
    held = entry(tenant, status="held")
    url = reverse("admin:timelogging_timeentry_changelist")
    admin_client.post(url, {"action": "retry_entries", "_selected_action": [held.pk]})
    PSAConnectionFactory(tenant=tenant)  # a change of another kind, left out by the filter
    history = reverse("admin:timelogging_configchange_changelist")
    page = admin_client.get(history)
    assert "?model=timeentry" in page.content.decode()
    filtered = admin_client.get(history, {"model": "timeentry"})
    rows = filtered.context["cl"].result_list
    assert [(r.content_type.model, r.object_id) for r in rows] == [("timeentry", held.pk)]
    assert "Retried" in filtered.content.decode()
