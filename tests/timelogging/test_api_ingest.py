"""POST /api/v1/automation-runs/: the contract the automation service codes against."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from tests.factories import AutomationFactory, ClientFactory, TagFactory, TenantFactory
from timelogging.models import Automation, AutomationRun, Client, TenantAPIKey, TimeEntry

URL = "/api/v1/automation-runs/"
pytestmark = pytest.mark.django_db


def post(api, payload):
    # json.dumps escapes non-ASCII (and lone surrogates) exactly as a JSON client may send them.
    return api.generic("POST", URL, json.dumps(payload), content_type="application/json")


def client_for(key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_first_receipt_is_201_with_the_decision_and_a_pending_entry(api, run_payload, tenant):
    response = post(api, run_payload())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["run_id"] == "run-0001"
    assert body["decision"] == "log"
    assert body["reason"]
    entry = body["entry"]
    assert entry["status"] == "pending"
    assert entry["minutes"] == 7  # 6 min 5 s rounded up
    assert entry["logged_as"] is None  # resolved when posting
    assert entry["psa_entry_id"] == ""
    assert entry["error"] is None
    started = dt.datetime.fromisoformat(run_payload()["started_at"])
    assert dt.datetime.fromisoformat(entry["start"]) == started
    assert dt.datetime.fromisoformat(entry["end"]) == started + dt.timedelta(minutes=7)
    # Queued in the same transaction, with the entry id as the only argument.
    assert OrmQ.objects.count() == 1
    queued = OrmQ.objects.get()
    task = queued.task
    assert task["func"] == "timelogging.tasks.post_time_entry"
    assert task["args"] == (TimeEntry.objects.get().pk,)
    # Where a cluster looks for it (the ingest writes the row itself: services/ingest.py).
    from django_q.brokers import get_broker

    assert queued.key == get_broker().list_key
    assert queued.lock <= timezone.now()


def test_notes_carry_summary_automation_name_and_reference(api, run_payload):
    post(api, run_payload())
    entry = TimeEntry.objects.select_related("run").get()
    assert "Reset the password of jane@contoso.example" in entry.notes
    assert "Automation: Reset password" in entry.notes
    assert entry.notes.endswith(f"Reference: {entry.run.reference_text}")


def test_same_run_again_is_200_with_the_same_representation_and_nothing_new(api, run_payload):
    first = post(api, run_payload())
    second = post(api, run_payload())
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert AutomationRun.objects.count() == 1
    assert TimeEntry.objects.count() == 1
    assert OrmQ.objects.count() == 1


def test_same_run_id_with_other_content_is_409(api, run_payload):
    post(api, run_payload())
    response = post(api, run_payload(summary="something else"))
    assert response.status_code == 409
    assert "run_id" in response.json()["errors"]
    assert AutomationRun.objects.count() == 1


def test_a_conflicting_report_changes_nothing(api, run_payload):
    # The run is inserted unless reported, after its client and automation are looked up or
    # created: a 409 must roll those back, and leave the known client's name as it was.
    post(api, run_payload())
    response = post(
        api,
        run_payload(client={"key": "contoso", "name": "Renamed"}, automation={"key": "new-one"}),
    )
    assert response.status_code == 409
    assert not Automation.objects.filter(key="new-one").exists()
    assert Client.objects.get(key="contoso").name == "Contoso Ltd"
    assert TimeEntry.objects.count() == OrmQ.objects.count() == 1


def test_same_run_id_in_another_tenant_is_another_run(api, run_payload):
    other = TenantFactory()
    _, key = TenantAPIKey.objects.create_key(tenant=other, name="other")
    post(api, run_payload())
    response = post(client_for(key), run_payload())
    assert response.status_code == 201
    assert set(AutomationRun.objects.values_list("tenant_id", flat=True)) == {
        other.pk,
        TenantAPIKey.objects.exclude(tenant=other).get().tenant_id,
    }


def test_skip_records_why_and_has_no_entry(api, run_payload, tenant):
    tenant.time_logging_enabled = False
    tenant.save()
    response = post(api, run_payload())
    assert response.status_code == 201
    body = response.json()
    assert (body["decision"], body["reason_code"], body["entry"]) == ("skip", "status_off", None)
    assert "off" in body["reason"]
    assert TimeEntry.objects.count() == 0
    assert OrmQ.objects.count() == 0


def test_failed_run_is_skipped_as_not_completed(api, run_payload):
    body = post(api, run_payload(outcome="failed")).json()
    assert (body["decision"], body["reason_code"]) == ("skip", "not_completed")


def test_outcome_defaults_to_completed(api, run_payload):
    payload = run_payload()
    del payload["outcome"]
    body = post(api, payload).json()
    assert body["decision"] == "log"
    assert body["outcome"] == "completed"


def test_tag_scope_uses_the_clients_tags(api, run_payload, tenant):
    tag = TagFactory(tenant=tenant, name="Time Logging")
    tenant.apply_to = "tags"
    tenant.save()
    tenant.apply_tags.set([tag])
    ClientFactory(tenant=tenant, key="tagged", tags=[tag])
    ClientFactory(tenant=tenant, key="untagged", tags=[TagFactory(tenant=tenant)])
    logged = post(api, run_payload(run_id="a", client={"key": "tagged"})).json()
    skipped = post(api, run_payload(run_id="b", client={"key": "untagged"})).json()
    assert logged["decision"] == "log"
    assert (skipped["decision"], skipped["reason_code"]) == ("skip", "client_not_in_scope")


def test_automation_minutes_and_switch(api, run_payload, tenant):
    AutomationFactory(tenant=tenant, key="fixed", minutes=20)
    AutomationFactory(tenant=tenant, key="off", log_time=False)
    fixed = post(api, run_payload(run_id="a", automation={"key": "fixed"})).json()
    off = post(api, run_payload(run_id="b", automation={"key": "off"})).json()
    assert fixed["entry"]["minutes"] == 20
    assert (off["decision"], off["reason_code"]) == ("skip", "automation_off")


def test_unknown_keys_are_created_and_names_update(api, run_payload, tenant):
    post(api, run_payload(run_id="a", client={"key": "new-client"}))
    client = Client.objects.get(tenant=tenant, key="new-client")
    assert client.name == ""
    post(api, run_payload(run_id="b", client={"key": "new-client", "name": "New Client Inc"}))
    post(api, run_payload(run_id="c", automation={"key": "reset-password", "name": "Reset PW"}))
    client.refresh_from_db()
    assert client.name == "New Client Inc"
    assert Automation.objects.get(tenant=tenant, key="reset-password").name == "Reset PW"
    assert Client.objects.filter(tenant=tenant).count() == 2


def test_specified_user_is_fixed_on_the_entry(api, run_payload, tenant):
    tenant.log_as = "specified"
    tenant.specified_psa_user_ref = "timelogging"
    tenant.specified_psa_user_name = "Time Logging"
    tenant.save()
    post(api, run_payload())
    entry = TimeEntry.objects.get()
    assert (entry.log_as, entry.psa_user_ref) == ("specified", "timelogging")


def test_get_returns_the_current_representation(api, run_payload):
    created = post(api, run_payload(run_id="abc-1")).json()
    TimeEntry.objects.update(status="posted", psa_entry_id="555", psa_user_ref="jdoe")
    response = api.get(f"{URL}abc-1/")
    assert response.status_code == 200
    body = response.json()
    assert body["entry"]["status"] == "posted"
    assert body["entry"]["psa_entry_id"] == "555"
    assert body["entry"]["logged_as"] == {"ref": "jdoe", "name": ""}
    assert body["run_id"] == created["run_id"]


def test_get_of_another_tenants_run_is_404(api, run_payload):
    other = TenantFactory()
    _, key = TenantAPIKey.objects.create_key(tenant=other, name="other")
    assert post(client_for(key), run_payload(run_id="theirs")).status_code == 201
    assert api.get(f"{URL}theirs/").status_code == 404
    assert api.get(f"{URL}nope/").status_code == 404


# --- authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer nonsense",
        "Bearer abc.def",
        "Token abc.def",
        "Basic Zm9vOmJhcg==",
    ],
)
def test_missing_or_unknown_key_is_401(db, run_payload, header):
    from rest_framework.test import APIClient

    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post(URL, run_payload(), format="json")
    assert response.status_code == 401
    assert "detail" in response.json()
    assert AutomationRun.objects.count() == 0


def test_revoked_key_is_401(api, api_key, run_payload):
    TenantAPIKey.objects.update(revoked=True)
    assert post(api, run_payload()).status_code == 401


def test_read_only_key_cannot_report_runs_but_can_read(api, run_payload, settings):
    settings.PIADESK_API_CACHE_SECONDS = 0  # a key changed in use: tests/.../test_api_key_cache
    post(api, run_payload(run_id="r1"))
    TenantAPIKey.objects.update(read_only=True)
    response = post(api, run_payload(run_id="r2"))
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    assert api.get(f"{URL}r1/").status_code == 200
    assert AutomationRun.objects.count() == 1


def test_expired_key_is_401(api, run_payload):
    TenantAPIKey.objects.update(expiry_date=timezone.now() - dt.timedelta(seconds=1))
    assert post(api, run_payload()).status_code == 401


def test_wrong_secret_with_a_real_prefix_is_401(api, api_key, run_payload):
    from rest_framework.test import APIClient

    client = APIClient()
    prefix = api_key.split(".")[0]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {prefix}.wrongsecret")
    assert client.post(URL, run_payload(), format="json").status_code == 401


def test_tenant_comes_from_the_key_never_the_body(api, run_payload, tenant):
    other = TenantFactory()
    response = post(api, run_payload(tenant=other.pk, tenant_id=other.pk))
    assert response.status_code == 201
    assert AutomationRun.objects.get().tenant_id == tenant.pk


# --- bad input --------------------------------------------------------------------------------
def _without(payload, field):
    payload = dict(payload)
    del payload[field]
    return payload


BAD_INPUT = [
    # (description, change to a valid payload, field expected in errors)
    ("missing run_id", lambda p: _without(p, "run_id"), "run_id"),
    ("missing automation", lambda p: _without(p, "automation"), "automation"),
    ("missing client", lambda p: _without(p, "client"), "client"),
    ("missing ticket_id", lambda p: _without(p, "ticket_id"), "ticket_id"),
    ("missing started_by", lambda p: _without(p, "started_by"), "started_by"),
    ("missing started_at", lambda p: _without(p, "started_at"), "started_at"),
    ("missing completed_at", lambda p: _without(p, "completed_at"), "completed_at"),
    ("blank run_id", lambda p: {**p, "run_id": ""}, "run_id"),
    ("run_id with a slash", lambda p: {**p, "run_id": "a/b"}, "run_id"),
    ("run_id too long", lambda p: {**p, "run_id": "r" * 201}, "run_id"),
    ("run_id not a string", lambda p: {**p, "run_id": ["x"]}, "run_id"),
    ("automation not an object", lambda p: {**p, "automation": "reset"}, "automation"),
    ("automation without key", lambda p: {**p, "automation": {"name": "x"}}, "automation"),
    ("client key too long", lambda p: {**p, "client": {"key": "k" * 201}}, "client"),
    ("client name too long", lambda p: {**p, "client": {"key": "k", "name": "n" * 201}}, "client"),
    ("ticket_id not numeric", lambda p: {**p, "ticket_id": "T20260501.0001"}, "ticket_id"),
    ("ticket_id boolean", lambda p: {**p, "ticket_id": True}, "ticket_id"),
    ("ticket_id null", lambda p: {**p, "ticket_id": None}, "ticket_id"),
    ("started_by not an email", lambda p: {**p, "started_by": "john"}, "started_by"),
    ("started_at not a date", lambda p: {**p, "started_at": "yesterday"}, "started_at"),
    (
        "started_at impossible date",
        lambda p: {**p, "started_at": "2026-02-30T10:00:00Z"},
        "started_at",
    ),
    ("started_at without zone", lambda p: {**p, "started_at": "2026-05-01T14:00:00"}, "started_at"),
    ("started_at a number", lambda p: {**p, "started_at": 1714572000}, "started_at"),
    (
        "completed before started",
        lambda p: {**p, "completed_at": "2000-01-01T00:00:00Z"},
        "completed_at",
    ),
    (
        "completed in the future",
        lambda p: {**p, "completed_at": "2999-01-01T00:00:00Z"},
        "completed_at",
    ),
    ("unknown outcome", lambda p: {**p, "outcome": "done"}, "outcome"),
    ("oversize summary", lambda p: {**p, "summary": "s" * 5000}, "summary"),
    ("summary not a string", lambda p: {**p, "summary": {"a": 1}}, "summary"),
    ("NUL in summary", lambda p: {**p, "summary": "a\x00b"}, "summary"),
    ("lone surrogate in run_id", lambda p: {**p, "run_id": "a\ud800"}, "run_id"),
    ("lone surrogate in summary", lambda p: {**p, "summary": "é" * 3000 + "\udfff"}, "summary"),
    (
        "lone surrogate in a client's name",
        lambda p: {**p, "client": {"key": "c", "name": "x\udbff"}},
        "client",
    ),
]


def test_a_lone_surrogate_is_named_by_its_code_point(api, run_payload):
    response = post(api, run_payload(summary="a\ud83d", client={"key": "c", "name": "\udc00"}))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["summary"] == ["Surrogate characters are not allowed: U+D83D."]
    assert errors["client"] == {"name": ["Surrogate characters are not allowed: U+DC00."]}


@pytest.mark.parametrize("description,change,field", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_400_with_the_field_and_reason(api, run_payload, description, change, field):
    response = post(api, change(run_payload()))
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["errors"], body
    assert body["errors"][field]
    assert AutomationRun.objects.count() == 0


@pytest.mark.parametrize(
    "raw,content_type,status",
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"a string"', "application/json", 400),
        (b"null", "application/json", 400),
        (b"", "application/json", 400),
        (b"run_id=1", "application/x-www-form-urlencoded", 415),
        (b"\xff\xfe", "application/json", 400),
    ],
)
def test_malformed_bodies_are_client_errors(api, raw, content_type, status):
    response = api.generic("POST", URL, raw, content_type=content_type)
    assert response.status_code == status, response.content
    assert "detail" in response.json()


def test_oversize_body_is_not_a_500(api, run_payload, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = post(api, run_payload(summary="x" * 20_000))
    assert response.status_code in (400, 413)


def test_a_valid_run_after_bad_ones_is_accepted(api, run_payload):
    post(api, run_payload(started_at="bad"))
    assert post(api, run_payload()).status_code == 201


def test_ticket_id_may_be_sent_as_a_number(api, run_payload):
    response = post(api, run_payload(ticket_id=1001))
    assert response.status_code == 201
    assert response.json()["ticket_id"] == "1001"


def test_times_with_offsets_are_stored_in_utc(api, run_payload):
    now = timezone.now().replace(microsecond=0)
    start = (now - dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=2)))
    response = post(
        api,
        run_payload(
            started_at=start.isoformat(),
            completed_at=(start + dt.timedelta(minutes=3)).isoformat(),
        ),
    )
    assert response.status_code == 201
    run = AutomationRun.objects.get()
    assert run.started_at == now - dt.timedelta(hours=1)


# --- integrity errors (issue 11) ----------------------------------------------------------------
def _failing_record(message):
    from django.db import IntegrityError

    def record(**kwargs):
        raise IntegrityError(message)

    return record


def test_only_the_run_id_race_answers_409(api, run_payload, monkeypatch):
    from timelogging.services import ingest

    race = (
        "UNIQUE constraint failed: "
        "timelogging_automationrun.tenant_id, timelogging_automationrun.run_id"
    )
    monkeypatch.setattr(ingest, "_record", _failing_record(race))
    response = post(api, run_payload())
    assert response.status_code == 409
    assert "retry" in response.json()["detail"]


def test_another_integrity_error_is_a_500_not_retry_it(api, run_payload, monkeypatch):
    from timelogging.services import ingest

    monkeypatch.setattr(ingest, "_record", _failing_record("NOT NULL constraint failed: x.y"))
    api.raise_request_exception = False
    response = post(api, run_payload())
    assert response.status_code == 500
    assert AutomationRun.objects.count() == 0
