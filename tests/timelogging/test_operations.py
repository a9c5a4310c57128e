"""Operator control over entries that are not posted (retry, re-decide, discard), recorded in
the configuration/operations history, and the resume that decides held entries again."""

from __future__ import annotations

import pytest
import responses
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType

from tests.factories import AutomationRunFactory, TimeEntryFactory
from tests.timelogging.test_delivery import ENTRIES
from timelogging.audit import change_lines
from timelogging.models import AutomationRun, ConfigChange, PostAttempt, TimeEntry
from timelogging.services.delivery import connection_pause, connection_resume
from timelogging.services.operations import (
    OperationRefused,
    entries_discard,
    entries_redecide,
    entries_retry,
)
from timelogging.tasks import post_time_entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return User.objects.create_user("operator", password="x", is_staff=True)


def make_entry(tenant, **kwargs):
    tenant.log_as, tenant.specified_psa_user_ref = "specified", "timelogging"
    tenant.specified_psa_user_name = "Time Logging"
    tenant.save()
    run = AutomationRunFactory(tenant=tenant, ticket_id="1001")
    run.automation.minutes = 7
    run.automation.save()
    defaults = {
        "log_as": "specified",
        "psa_user_ref": "timelogging",
        "psa_user_name": "Time Logging",
        "minutes": 7,
    }
    return TimeEntryFactory(run=run, **{**defaults, **kwargs})


def history(entry):
    return list(
        ConfigChange.objects.filter(
            content_type=ContentType.objects.get_for_model(TimeEntry), object_id=entry.pk
        ).order_by("pk")
    )


def test_retry_releases_every_entry_not_posted_and_records_who_and_why(tenant, staff):
    failed = make_entry(tenant, status="failed", counted_attempts=10, error_class="permanent")
    held = make_entry(tenant, status="held")
    waiting = make_entry(tenant, status="retry_wait", needs_lookup=True)
    posted = make_entry(tenant, status="posted")
    discarded = make_entry(tenant, status="discarded")
    busy = make_entry(tenant, status="posting")

    ids = [e.pk for e in (failed, held, waiting, posted, discarded, busy)]
    result = entries_retry(entry_ids=ids, actor=staff, reason="PSA fixed")

    assert (result.done, result.skipped) == (3, 3)
    for entry in (failed, held, waiting):
        entry.refresh_from_db()
        assert (entry.status, entry.counted_attempts) == ("pending", 0)
        [row] = history(entry)
        assert row.actor == staff and row.tenant_id == tenant.pk
        assert row.additional_data == {"operation": "retry", "reason": "PSA fixed"}
    # Exactly once: an entry that may have landed still looks first.
    waiting.refresh_from_db()
    assert waiting.needs_lookup is True
    for entry in (posted, discarded, busy):
        before = entry.status
        entry.refresh_from_db()
        assert entry.status == before and history(entry) == []
    lines = change_lines(history(failed)[0])
    assert [(line.field, line.new) for line in lines][:2] == [
        ("operation", "Retried"),
        ("why", "PSA fixed"),
    ]
    assert any(line.field == "status" and line.old.startswith("Failed") for line in lines)


def test_discard_needs_a_reason_and_is_never_posted(tenant, staff, cw, connection):
    entry = make_entry(tenant, status="failed")
    with pytest.raises(OperationRefused):
        entries_discard(entry_ids=[entry.pk], actor=staff, reason="  ")
    entry.refresh_from_db()
    assert entry.status == "failed"

    assert entries_discard(entry_ids=[entry.pk], actor=staff, reason="Logged by hand").done == 1
    entry.refresh_from_db()
    assert entry.status == "discarded"
    assert entry.error == "Discarded by operator: Logged by hand"
    [row] = history(entry)
    assert row.additional_data == {"operation": "discard", "reason": "Logged by hand"}
    assert row.changes["status"] == ["failed", "discarded"]
    # Never posted: a queued task for it does nothing.
    assert post_time_entry(entry.pk) == "not due (discarded)"
    assert not cw.calls


def test_discarding_an_entry_that_may_have_landed_says_where_to_look(tenant, staff):
    entry = make_entry(tenant, status="retry_wait", needs_lookup=True)
    entries_discard(entry_ids=[entry.pk], actor=staff, reason="duplicate")
    entry.refresh_from_db()
    assert entry.run.reference_text in entry.error and "ticket 1001" in entry.error


def test_redecide_applies_the_current_settings_and_keeps_the_old_decision(tenant, staff):
    entry = make_entry(tenant, status="failed", error="No such member", error_class="unresolved")
    tenant.specified_psa_user_ref, tenant.specified_psa_user_name = "jdoe", "John Doe"
    tenant.save()
    entry.run.automation.minutes = 15
    entry.run.automation.save()

    assert entries_redecide(entry_ids=[entry.pk], actor=staff, reason="new user").done == 1

    entry.refresh_from_db()
    assert (entry.status, entry.psa_user_ref, entry.psa_user_name, entry.minutes) == (
        "pending",
        "jdoe",
        "John Doe",
        15,
    )
    assert entry.end - entry.start == __import__("datetime").timedelta(minutes=15)
    assert (entry.error, entry.error_class) == ("", "")
    [row] = history(entry)
    assert row.changes["psa_user_ref"] == ["timelogging", "jdoe"]
    assert row.changes["minutes"] == [7, 15]
    assert row.additional_data["operation"] == "redecide"


def test_redecide_of_a_run_no_longer_in_scope_discards_it_with_the_reason(tenant, staff):
    entry = make_entry(tenant, status="held")
    tenant.time_logging_enabled = False
    tenant.save()
    entries_redecide(entry_ids=[entry.pk], actor=staff)
    entry.refresh_from_db()
    entry.run.refresh_from_db()
    assert entry.status == "discarded"
    assert "not logged" in entry.error
    assert (entry.run.decision, entry.run.skip_reason) == ("skip", "status_off")
    [row] = history(entry)
    assert row.changes["decision"] == [AutomationRun.Decision.LOG, AutomationRun.Decision.SKIP]


def test_resume_decides_held_entries_again_and_posts_them(cw, connection, tenant, staff):
    # Held with a specified user that the PSA refuses; the settings are fixed; resume.
    cw.post(ENTRIES, status=400, json={"errors": [{"field": "member", "message": "unknown"}]})
    entry = make_entry(tenant)
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    connection.refresh_from_db()
    assert entry.status == "held" and connection.paused_at is not None

    tenant.specified_psa_user_ref, tenant.specified_psa_user_name = "jdoe", "John Doe"
    tenant.save()
    cw.replace(responses.POST, ENTRIES, json={"id": 77}, status=201)
    assert connection_resume(connection_id=connection.pk, actor=staff) == 1

    entry.refresh_from_db()
    assert (entry.status, entry.psa_user_ref) == ("pending", "jdoe")
    assert post_time_entry(entry.pk) == "posted"
    entry.refresh_from_db()
    assert (entry.psa_entry_id, entry.psa_user_ref) == ("77", "jdoe")
    [row] = history(entry)
    assert row.actor == staff and row.changes["psa_user_ref"] == ["timelogging", "jdoe"]
    assert list(PostAttempt.objects.filter(entry=entry).values_list("outcome", flat=True)) == [
        "unresolved",
        "posted",
    ]


def test_resume_without_a_settings_change_releases_without_history_rows(cw, connection, tenant):
    entry = make_entry(tenant)
    connection_pause(connection_id=connection.pk, reason="staff paused it")
    entry.refresh_from_db()
    assert entry.status == "held"
    assert connection_resume(connection_id=connection.pk) == 1
    entry.refresh_from_db()
    assert entry.status == "pending"
    assert history(entry) == []
