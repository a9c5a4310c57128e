"""The worker's job: resolve who, fit the window, post, record — with ConnectWise at the edge."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import responses
from django.utils import timezone

from tests.factories import (
    AutomationRunFactory,
    PSAConnectionFactory,
    TimeEntryFactory,
)
from timelogging.models import PostAttempt, PSAUserMapping, TimeEntry
from timelogging.services.posting import entry_post
from timelogging.tasks import post_time_entry

pytestmark = pytest.mark.django_db

SITE = "https://cw.example.com"
API = f"{SITE}/v2025_1/apis/3.0/"
JDOE = {
    "id": 101,
    "identifier": "jdoe",
    "firstName": "John",
    "lastName": "Doe",
    "primaryEmail": "john.doe@msp.example",
    "officeEmail": "",
}


def make_entry(tenant, *, log_as="starter", started_by="john.doe@msp.example", **kwargs):
    tenant.log_as = log_as
    tenant.save()
    run = AutomationRunFactory(tenant=tenant, started_by=started_by, ticket_id="1001")
    return TimeEntryFactory(run=run, log_as=log_as, **kwargs)


def posted_payloads(mock):
    return [
        json.loads(call.request.body)
        for call in mock.calls
        if call.request.method == "POST" and call.request.url.endswith("time/entries")
    ]


def calls_to(mock, fragment):
    return [c for c in mock.calls if fragment in c.request.url]


def test_logged_as_the_starter_resolved_by_email(cw, connection, tenant):
    cw.get(f"{API}system/members", json=[JDOE])
    cw.post(f"{API}time/entries", json={"id": 9001}, status=201)
    entry = make_entry(tenant)

    assert post_time_entry(entry.pk) == "posted"

    entry.refresh_from_db()
    assert (entry.status, entry.psa_entry_id, entry.attempts) == ("posted", "9001", 1)
    assert (entry.psa_user_ref, entry.psa_user_name) == ("jdoe", "John Doe")
    assert entry.connection == connection
    assert entry.posted_at is not None
    [payload] = posted_payloads(cw)
    assert payload["member"] == {"identifier": "jdoe"}
    assert payload["chargeToId"] == 1001
    assert payload["chargeToType"] == "ServiceTicket"
    assert payload["notes"] == entry.notes
    assert "billableOption" not in payload
    # The resolution is cached for the next run of the same person.
    mapping = PSAUserMapping.objects.get(connection=connection, email="john.doe@msp.example")
    assert (mapping.psa_user_ref, mapping.source) == ("jdoe", "resolved")


def test_a_cached_mapping_is_used_without_a_lookup(cw, connection, tenant):
    PSAUserMapping.objects.create(
        tenant=tenant,
        connection=connection,
        email="jd@other-domain.example",
        psa_user_ref="jdoe",
        psa_user_name="John Doe",
        source="manual",
    )
    cw.post(f"{API}time/entries", json={"id": 9002}, status=201)
    entry = make_entry(tenant, started_by="jd@other-domain.example")

    post_time_entry(entry.pk)

    assert calls_to(cw, "system/members") == []
    assert posted_payloads(cw)[0]["member"] == {"identifier": "jdoe"}


def test_starter_without_a_member_fails_with_what_to_do(cw, connection, tenant):
    cw.get(f"{API}system/members", json=[])
    entry = make_entry(tenant, started_by="nobody@msp.example")

    assert post_time_entry(entry.pk) == "failed"

    entry.refresh_from_db()
    assert entry.error_class == "unresolved"
    assert "nobody@msp.example" in entry.error
    assert "mapping" in entry.error
    assert posted_payloads(cw) == []


def test_logged_as_the_ticket_assignee(cw, connection, tenant):
    cw.get(
        f"{API}service/tickets/1001",
        json={"id": 1001, "owner": {"id": 102, "identifier": "asmith", "name": "Alice Smith"}},
    )
    cw.post(f"{API}time/entries", json={"id": 9003}, status=201)
    entry = make_entry(tenant, log_as="assignee")

    post_time_entry(entry.pk)

    entry.refresh_from_db()
    assert (entry.status, entry.psa_user_ref, entry.psa_user_name) == (
        "posted",
        "asmith",
        "Alice Smith",
    )
    assert posted_payloads(cw)[0]["member"] == {"identifier": "asmith"}
    assert calls_to(cw, "system/members") == []


def test_unassigned_ticket_fails_with_what_to_do(cw, connection, tenant):
    cw.get(f"{API}service/tickets/1001", json={"id": 1001, "owner": None})
    entry = make_entry(tenant, log_as="assignee")

    post_time_entry(entry.pk)

    entry.refresh_from_db()
    assert (entry.status, entry.error_class) == ("failed", "unresolved")
    assert "#1001 has no assignee" in entry.error
    assert posted_payloads(cw) == []


def test_logged_as_the_specified_user(cw, connection, tenant):
    cw.post(f"{API}time/entries", json={"id": 9004}, status=201)
    entry = make_entry(
        tenant, log_as="specified", psa_user_ref="timelogging", psa_user_name="Time Logging"
    )

    post_time_entry(entry.pk)

    entry.refresh_from_db()
    assert (entry.status, entry.psa_user_ref) == ("posted", "timelogging")
    assert posted_payloads(cw)[0]["member"] == {"identifier": "timelogging"}
    assert calls_to(cw, "system/members") == [] and calls_to(cw, "service/tickets") == []


def test_specified_without_a_user_is_held_for_the_tenants_settings(cw, connection, tenant):
    # Every entry is logged as the specified user: its problem holds the entries (and pauses
    # the connection) until the settings are fixed, instead of failing them one by one.
    entry = make_entry(tenant, log_as="specified", psa_user_ref="")
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    assert (entry.status, entry.error_class) == ("held", "configuration")
    assert "Tenant settings" in entry.error and "resume the connection" in entry.error


def test_a_refused_starter_fails_only_that_entry(cw, connection, tenant):
    cw.get(f"{API}system/members", json=[JDOE])
    cw.post(
        f"{API}time/entries",
        status=400,
        json={"code": "InvalidObject", "errors": [{"field": "member", "message": "inactive"}]},
    )
    entry = make_entry(tenant)
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    connection.refresh_from_db()
    assert (entry.status, entry.error_class) == ("failed", "unresolved")
    assert connection.paused_at is None


def test_a_refused_specified_user_holds_the_entry_with_advice(cw, connection, tenant):
    cw.post(
        f"{API}time/entries",
        status=400,
        json={"code": "InvalidObject", "errors": [{"field": "member", "message": "inactive"}]},
    )
    entry = make_entry(tenant, log_as="specified", psa_user_ref="gone")
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    connection.refresh_from_db()
    assert (entry.status, entry.error_class) == ("held", "configuration")
    assert "choose a user of ConnectWise" in entry.error
    assert connection.paused_at is not None


def test_a_window_ending_in_the_future_is_moved_back_for_connectwise(cw, connection, tenant):
    cw.post(f"{API}time/entries", json={"id": 9005}, status=201)
    now = timezone.now()
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging", minutes=20)
    entry.start = now - dt.timedelta(minutes=5)
    entry.end = entry.start + dt.timedelta(minutes=20)
    entry.save()

    post_time_entry(entry.pk)

    [payload] = posted_payloads(cw)
    end = dt.datetime.strptime(payload["timeEnd"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    start = dt.datetime.strptime(payload["timeStart"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert end <= timezone.now()
    assert end - start == dt.timedelta(minutes=20)
    entry.refresh_from_db()
    assert (entry.start, entry.end) == (start, end)  # the history shows what was posted


def test_a_past_window_is_posted_unchanged(cw, connection, tenant):
    cw.post(f"{API}time/entries", json={"id": 9006}, status=201)
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")
    original = (entry.start.replace(microsecond=0), entry.end.replace(microsecond=0))
    entry.start, entry.end = original
    entry.save()
    post_time_entry(entry.pk)
    [payload] = posted_payloads(cw)
    assert payload["timeStart"] == original[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert payload["timeEnd"] == original[1].strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_psas_words_are_recorded_on_failure(cw, connection, tenant):
    cw.post(
        f"{API}time/entries",
        status=400,
        json={
            "code": "InvalidObject",
            "message": "TimeEntry object is invalid",
            "errors": [
                {
                    "code": "InvalidField",
                    "message": "The ticket is closed for time entry",
                    "resource": "TimeEntry",
                    "field": "chargeToId",
                }
            ],
        },
    )
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")

    post_time_entry(entry.pk)

    entry.refresh_from_db()
    assert (entry.status, entry.error_class) == ("failed", "permanent")
    assert "The ticket is closed for time entry" in entry.error
    attempt = PostAttempt.objects.get(entry=entry)
    assert (attempt.number, attempt.outcome, attempt.http_status) == (1, "permanent", 400)
    assert attempt.exchanges[-1]["method"] == "POST"


def test_secrets_never_reach_the_recorded_exchanges(cw, connection, tenant):
    cw.post(f"{API}time/entries", json={"id": 9007}, status=201)
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")
    post_time_entry(entry.pk)
    recorded = json.dumps(list(PostAttempt.objects.values_list("exchanges", flat=True)))
    assert "privkey456" not in recorded
    # ...while the request really was authenticated with it.
    assert any(c.request.headers.get("Authorization", "").startswith("Basic ") for c in cw.calls)


def test_no_active_connection_fails_as_configuration(tenant):
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    assert (entry.status, entry.error_class) == ("failed", "configuration")
    assert "no active PSA connection" in entry.error


def test_undecryptable_credentials_fail_closed(cw, tenant, settings):
    from timelogging import crypto

    connection = PSAConnectionFactory(tenant=tenant)
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")
    settings.PIADESK_ENCRYPTION_KEYS = ["q0M0v3Ftn1j3ZbEJbZ5lS2s0eUQ7W2Xy3jQkqg7wqKE="]
    crypto.reset_cache()
    try:
        post_time_entry(entry.pk)
    finally:
        crypto.reset_cache()
    entry.refresh_from_db()
    # A configuration problem: the connection is paused and its entries held for a person.
    assert (entry.status, entry.error_class) == ("held", "configuration")
    assert "PIADESK_ENCRYPTION_KEYS" in entry.error
    connection.refresh_from_db()
    assert connection.paused_at is not None
    assert "PIADESK_ENCRYPTION_KEYS" in connection.pause_reason
    assert len(cw.calls) == 0


def test_running_the_task_again_posts_nothing_more(cw, connection, tenant):
    cw.post(f"{API}time/entries", json={"id": 9008}, status=201)
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")
    post_time_entry(entry.pk)
    assert post_time_entry(entry.pk) == "not due (posted)"
    assert len(posted_payloads(cw)) == 1
    entry.refresh_from_db()
    assert entry.attempts == 1


def test_an_entry_already_being_posted_is_left_alone(cw, connection, tenant):
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")
    TimeEntry.objects.filter(pk=entry.pk).update(
        status="posting", lease_expires_at=timezone.now() + dt.timedelta(minutes=5)
    )
    assert entry_post(entry_id=entry.pk) == "not due (posting)"
    assert len(cw.calls) == 0


def test_unknown_entry_id_is_skipped(db):
    assert entry_post(entry_id=123456) == "unknown entry"


def test_an_unexpected_error_never_leaves_the_entry_posting(cw, connection, tenant, monkeypatch):
    from psa.connectwise import ConnectWiseBackend

    def boom(self, entry):
        raise KeyError("surprise")

    monkeypatch.setattr(ConnectWiseBackend, "post_time_entry", boom)
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    # It may have struck after sending: try again later, looking on the ticket first.
    assert (entry.status, entry.needs_lookup) == ("retry_wait", True)
    assert "surprise" in entry.error


def test_the_assignee_is_recorded_by_name_not_by_id(tenant):
    # Autotask names a ticket's assigned resource by id only: posting looks the name up
    # (once, cached) instead of recording the id as the name.
    PSAConnectionFactory(
        tenant=tenant,
        vendor="autotask",
        settings={"api_username": "api@acme.example"},
        secrets={"integration_code": "CODE", "secret": "s3cret"},
    )
    at = "https://webservices5.autotask.net/atservicesrest/v1.0/"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            "https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation",
            json={"zoneName": "5", "url": "https://webservices5.autotask.net/atservicesrest/"},
        )
        mock.get(
            f"{at}Tickets/1001",
            json={"item": {"id": 1001, "assignedResourceID": 7, "assignedResourceRoleID": 9}},
        )
        mock.get(
            f"{at}Resources/7", json={"item": {"id": 7, "firstName": "Ann", "lastName": "Lee"}}
        )
        mock.post(f"{at}TimeEntries", json={"itemId": 55})
        entry = make_entry(tenant, log_as="assignee")
        assert post_time_entry(entry.pk) == "posted"
    entry.refresh_from_db()
    assert (entry.psa_user_ref, entry.psa_user_name) == ("7", "Ann Lee")


# --- the attempt's deadline (psa/http.py) ---------------------------------------------------
@pytest.fixture
def clock(monkeypatch, settings):
    """The HTTP session's clock, advanced by the mocked PSA's answers; a 60 s deadline."""
    from tests.psa.test_http import FakeClock

    settings.PSA_ATTEMPT_DEADLINE_SECONDS = 60
    fake = FakeClock()
    monkeypatch.setattr("psa.http.monotonic", fake)
    return fake


def test_past_the_deadline_the_create_is_not_sent_and_the_entry_tries_again(
    cw, connection, tenant, clock
):
    cw.add_callback(
        "GET", f"{API}system/members", callback=clock.answer(61, body=json.dumps([JDOE]))
    )
    cw.post(f"{API}time/entries", json={"id": 9101}, status=201)
    entry = make_entry(tenant)
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    assert posted_payloads(cw) == []
    # Nothing reached the PSA: no look-up is needed before the next try.
    assert (entry.status, entry.counted_attempts, entry.needs_lookup) == ("retry_wait", 1, False)
    assert entry.error_class == "retryable"
    assert "did not reach the PSA" in entry.error
    assert entry.post_attempts.get().outcome == "retryable"


def test_past_the_deadline_an_entry_that_may_have_landed_still_looks_first(
    cw, connection, tenant, clock
):
    cw.add_callback("GET", f"{API}time/entries", callback=clock.answer(61, body="[]"))
    cw.post(f"{API}time/entries", json={"id": 9102}, status=201)
    entry = make_entry(tenant, log_as="specified", psa_user_ref="timelogging")
    TimeEntry.objects.filter(pk=entry.pk).update(needs_lookup=True)
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    assert posted_payloads(cw) == []
    assert (entry.status, entry.needs_lookup) == ("retry_wait", True)


def test_a_create_the_deadline_cuts_short_is_an_unknown_outcome(cw, connection, tenant, clock):
    import requests

    cw.add_callback(
        "GET", f"{API}system/members", callback=clock.answer(55, body=json.dumps([JDOE]))
    )
    cw.post(f"{API}time/entries", body=requests.ReadTimeout("read timed out"))
    entry = make_entry(tenant)
    post_time_entry(entry.pk)
    entry.refresh_from_db()
    assert len(posted_payloads(cw)) == 1
    # It was sent with the 5 s left: it may have landed, so the next attempt looks first.
    assert (entry.status, entry.needs_lookup) == ("retry_wait", True)
    assert "within 5 s" in entry.error and "deadline (60 s)" in entry.error


def test_each_attempt_has_the_deadline_and_staff_look_ups_a_shorter_one(connection, settings):
    from timelogging.services.connections import (
        connection_budgeted_backend,
        connection_lookup_backend,
    )

    settings.PSA_ATTEMPT_DEADLINE_SECONDS = 100
    assert connection_budgeted_backend(connection).http.deadline_seconds == 100
    assert connection_lookup_backend(connection).http.deadline_seconds == 45
    settings.PSA_ATTEMPT_DEADLINE_SECONDS = 30
    assert connection_lookup_backend(connection).http.deadline_seconds == 30
