"""GET /api/v1/time-entries/ and GET /api/v1/automation-runs/: the read-only history API."""

from __future__ import annotations

import copy
import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    TenantFactory,
    TimeEntryFactory,
)
from timelogging.models import AutomationRun, TenantAPIKey, TimeEntry

ENTRIES = "/api/v1/time-entries/"
RUNS = "/api/v1/automation-runs/"
pytestmark = pytest.mark.django_db


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def entry_for(tenant, **kwargs) -> TimeEntry:
    run_kwargs = {k[5:]: kwargs.pop(k) for k in list(kwargs) if k.startswith("run__")}
    return TimeEntryFactory.create(
        run=AutomationRunFactory.create(tenant=tenant, **run_kwargs), **kwargs
    )


def run_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["run_id"] for row in response.json()["results"]]


def walk(api, url, **params) -> list[str]:
    """Every page from ``url``, following ``next``; the run ids in order."""
    seen: list[str] = []
    response = api.get(url, params)
    while True:
        seen += run_ids(response)
        next_link = response.json()["next"]
        if next_link is None:
            return seen
        response = api.get(next_link)


# --- time entries -----------------------------------------------------------------------------
def test_entry_representation(api, tenant):
    client = ClientFactory(tenant=tenant, key="contoso", name="Contoso Ltd")
    automation = AutomationFactory(tenant=tenant, key="reset-password", name="Reset password")
    entry = entry_for(
        tenant,
        run__client=client,
        run__automation=automation,
        run__run_id="run-42",
        run__ticket_id="1001",
        status=TimeEntry.Status.POSTED,
        psa_user_ref="jdoe",
        psa_user_name="John Doe",
        psa_entry_id="9001",
        attempts=1,
        posted_at=timezone.now(),
    )
    response = api.get(ENTRIES)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert (body["next"], body["previous"]) == (None, None)
    (row,) = body["results"]
    assert row == {
        "run_id": "run-42",
        "reference": entry.run.reference_text,
        "ticket_id": "1001",
        "client": {"key": "contoso", "name": "Contoso Ltd"},
        "automation": {"key": "reset-password", "name": "Reset password"},
        "started_by": entry.run.started_by,
        "status": "posted",
        "minutes": 7,
        "start": row["start"],
        "end": row["end"],
        "log_as": "starter",
        "logged_as": {"ref": "jdoe", "name": "John Doe"},
        "psa_entry_id": "9001",
        "attempts": 1,
        "error_class": "",
        "error": None,
        "waiting_for": None,
        "next_attempt_at": None,
        "created_at": row["created_at"],
        "posted_at": row["posted_at"],
    }
    assert dt.datetime.fromisoformat(row["start"]) == entry.start
    assert dt.datetime.fromisoformat(row["end"]) == entry.end
    assert dt.datetime.fromisoformat(row["created_at"]) == entry.created_at
    assert dt.datetime.fromisoformat(row["posted_at"]) == entry.posted_at


def test_a_waiting_entry_says_what_it_waits_for_and_until_when(api, tenant):
    """Waits are not attempts (issue 11): the automation service's developers see the wait
    and when the next try is due, as staff do on the entry's page."""
    due = timezone.now() + dt.timedelta(minutes=3)
    entry_for(
        tenant,
        run__run_id="waiting",
        status=TimeEntry.Status.RETRY_WAIT,
        waiting_for=TimeEntry.WaitReason.BUDGET,
        next_attempt_at=due,
    )
    entry_for(
        tenant,
        run__run_id="backing-off",
        status=TimeEntry.Status.RETRY_WAIT,
        next_attempt_at=due,
        attempts=1,
    )
    # A wait left on an entry that is no longer open is not shown (nor its old due time).
    entry_for(
        tenant,
        run__run_id="failed",
        status=TimeEntry.Status.FAILED,
        waiting_for=TimeEntry.WaitReason.BUDGET,
        next_attempt_at=due,
    )
    rows = {row["run_id"]: row for row in api.get(ENTRIES).json()["results"]}
    assert rows["waiting"]["waiting_for"] == "budget"
    assert dt.datetime.fromisoformat(rows["waiting"]["next_attempt_at"]) == due
    assert rows["backing-off"]["waiting_for"] is None
    assert dt.datetime.fromisoformat(rows["backing-off"]["next_attempt_at"]) == due
    assert (rows["failed"]["waiting_for"], rows["failed"]["next_attempt_at"]) == (None, None)
    # The run's own answer carries the same entry fields.
    run = api.get("/api/v1/automation-runs/waiting/").json()
    assert run["entry"]["waiting_for"] == "budget"


def test_entries_are_newest_first_and_only_the_keys_tenant(api, tenant):
    other = TenantFactory()
    entry_for(other, run__run_id="theirs")
    for n in range(3):
        entry_for(tenant, run__run_id=f"ours-{n}")
    assert run_ids(api.get(ENTRIES)) == ["ours-2", "ours-1", "ours-0"]
    _, their_key = TenantAPIKey.objects.create_key(tenant=other, name="theirs")
    assert run_ids(client_for(their_key).get(ENTRIES)) == ["theirs"]
    # Their run id as a filter finds nothing here.
    assert run_ids(api.get(ENTRIES, {"run_id": "theirs"})) == []


def test_entry_filters(api, tenant):
    contoso = ClientFactory(tenant=tenant, key="contoso")
    reset = AutomationFactory(tenant=tenant, key="reset")
    a = entry_for(
        tenant,
        run__run_id="a",
        run__client=contoso,
        run__ticket_id="1001",
        status=TimeEntry.Status.POSTED,
        psa_user_ref="jdoe",
    )
    entry_for(
        tenant,
        run__run_id="b",
        run__automation=reset,
        status=TimeEntry.Status.FAILED,
        psa_user_ref="asmith",
    )
    c = entry_for(tenant, run__run_id="c", run__client=contoso, run__automation=reset)
    TimeEntry.objects.filter(pk=a.pk).update(created_at=dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC))
    TimeEntry.objects.filter(pk=c.pk).update(created_at=dt.datetime(2026, 5, 2, 0, tzinfo=dt.UTC))

    def ids(**params):
        return sorted(run_ids(api.get(ENTRIES, params)))

    assert ids(client="contoso") == ["a", "c"]
    assert ids(automation="reset") == ["b", "c"]
    assert ids(client="contoso", automation="reset") == ["c"]
    assert ids(status="failed") == ["b"]
    assert ids(psa_user="jdoe") == ["a"]
    assert ids(ticket="1001") == ["a"]
    assert ids(run_id="b") == ["b"]
    assert ids(client="nobody") == []
    # Ranges: after is inclusive, before exclusive; a date means 00:00 UTC; zones are honoured.
    assert ids(created_after="2026-05-01", created_before="2026-05-02") == ["a"]
    assert ids(created_after="2026-05-02T00:00:00Z", created_before="2026-05-03") == ["c"]
    assert ids(created_after="2026-05-01T12:00:00+02:00", created_before="2026-05-02") == ["a"]
    assert ids(created_after="2026-05-01T12:00:01+02:00", created_before="2026-05-02") == []
    # A "+" typed unencoded arrives as a space: read as the offset the client meant.
    response = api.get(
        f"{ENTRIES}?created_after=2026-05-01T12:00:00 02:00&created_before=2026-05-02"
    )
    assert sorted(run_ids(response)) == ["a"]
    # An empty value is no filter.
    assert ids(status="", client="") == ["a", "b", "c"]


BAD_ENTRY_QUERIES = [
    ("status", "done"),
    ("status", "POSTED"),
    ("created_after", "yesterday"),
    ("created_after", "2026-02-30"),
    ("created_after", "2026-05-01T14:00:00"),  # naive: which zone?
    ("created_before", "0001-01-01T00:00:00+05:00"),  # before year 1 in UTC
    ("created_before", "9999-12-31T23:00:00-05:00"),  # after year 9999 in UTC
    ("created_after", "1" * 5000),
    ("ticket", "T-1001"),
    ("ticket", "1" * 19),
    ("run_id", "a/b"),
    ("run_id", "r" * 201),
    ("client", "k" * 201),
    ("client", "a\x00b"),
    ("psa_user", "u" * 101),
    ("page_size", "0"),
    ("page_size", "501"),
    ("page_size", "-1"),
    ("page_size", "ten"),
    ("page_size", "9" * 5000),
    ("cursor", "garbage"),
    ("cursor", "cD1ub3QtYS1kYXRl"),  # base64 of p=not-a-date
    ("cursor", "bz0tMQ=="),  # base64 of o=-1
    ("cursor", "é"),
]


BAD_ENTRY_CASES = [(ENTRIES, p, v) for p, v in BAD_ENTRY_QUERIES] + [
    (f"{ENTRIES}export.csv", p, v) for p, v in BAD_ENTRY_QUERIES if p not in ("page_size", "cursor")
]


@pytest.mark.parametrize("url,param,value", BAD_ENTRY_CASES)
def test_bad_entry_queries_are_400_with_the_parameter_and_reason(api, tenant, url, param, value):
    entry_for(tenant)
    response = api.get(url, {param: value})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["detail"] == "Invalid input."
    assert body["errors"][param], body


def test_page_size_within_the_limits_is_honoured(api, tenant):
    for _ in range(3):
        entry_for(tenant)
    assert len(api.get(ENTRIES, {"page_size": "2"}).json()["results"]) == 2
    assert len(api.get(ENTRIES, {"page_size": "500"}).json()["results"]) == 3


def test_cursor_pages_cover_every_entry_once_even_with_equal_timestamps(api, tenant):
    entries = [entry_for(tenant, run__run_id=f"r{n:02d}") for n in range(12)]
    # Worst case for a timestamp cursor: every row has the same created_at.
    TimeEntry.objects.update(created_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    expected = [e.run.run_id for e in sorted(entries, key=lambda e: -e.pk)]
    assert walk(api, ENTRIES, page_size=5) == expected


def test_cursor_pages_are_stable_while_entries_arrive(api, tenant):
    for n in range(7):
        entry_for(tenant, run__run_id=f"old-{n}")
    first = api.get(ENTRIES, {"page_size": 3}).json()
    assert [r["run_id"] for r in first["results"]] == ["old-6", "old-5", "old-4"]
    for n in range(4):
        entry_for(tenant, run__run_id=f"new-{n}")  # newer than everything listed
    rest: list[str] = []
    response = api.get(first["next"])
    while True:
        rest += run_ids(response)
        if response.json()["next"] is None:
            break
        response = api.get(response.json()["next"])
    assert rest == ["old-3", "old-2", "old-1", "old-0"]  # nothing repeated, nothing skipped
    # Going back from the second page shows the newer rows that arrived.
    second = api.get(first["next"]).json()
    assert run_ids(api.get(second["previous"]))[-3:] == ["old-6", "old-5", "old-4"]


def test_next_link_keeps_the_filters(api, tenant):
    for n in range(4):
        entry_for(tenant, run__run_id=f"f-{n}", status=TimeEntry.Status.FAILED)
        entry_for(tenant, run__run_id=f"p-{n}", status=TimeEntry.Status.POSTED)
    first = api.get(ENTRIES, {"status": "failed", "page_size": 3}).json()
    query = parse_qs(urlsplit(first["next"]).query)
    assert query["status"] == ["failed"]
    assert query["page_size"] == ["3"]
    assert walk(api, ENTRIES, status="failed", page_size=3) == [f"f-{n}" for n in (3, 2, 1, 0)]


def _count_queries(api, url, params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(url, params)
        assert response.status_code == 200, response.content
        if response.streaming:
            b"".join(response.streaming_content)
    return len(ctx.captured_queries)


def test_entry_pages_cost_the_same_queries_whatever_their_size(api, tenant, settings):
    settings.PIADESK_API_CACHE_SECONDS = 0  # the key is read on each request, as counted below
    for n in range(105):
        # Each entry with its own client and automation: a per-row query would show.
        entry_for(tenant, run__run_id=f"r{n}", psa_user_ref="jdoe")
    small = _count_queries(api, ENTRIES, {"page_size": 5})
    large = _count_queries(api, ENTRIES, {"page_size": 100})
    next_page = api.get(ENTRIES, {"page_size": 100}).json()["next"]
    with CaptureQueriesContext(connection) as ctx:
        assert len(api.get(next_page).json()["results"]) == 5
    filtered = _count_queries(api, ENTRIES, {"page_size": 100, "client": "x", "status": "pending"})
    # The key (with its tenant), then the page: no COUNT, nothing per row.
    assert small == large == len(ctx.captured_queries) == filtered == 2


# --- runs -------------------------------------------------------------------------------------
def test_run_list_representation_and_tenant(api, tenant):
    other = TenantFactory()
    AutomationRunFactory(tenant=other, run_id="theirs")
    client = ClientFactory(tenant=tenant, key="contoso", name="Contoso Ltd")
    logged = entry_for(tenant, run__run_id="logged", run__client=client).run
    skipped = AutomationRunFactory(
        tenant=tenant,
        run_id="skipped",
        decision=AutomationRun.Decision.SKIP,
        skip_reason=AutomationRun.SkipReason.AUTOMATION_OFF,
    )
    response = api.get(RUNS)
    assert run_ids(response) == ["skipped", "logged"]
    rows = copy.deepcopy(response.json()["results"])
    for row in rows:
        # The run as GET /automation-runs/{run_id}/ shows it, plus client and automation.
        listed = {k: row.pop(k) for k in ("client", "automation")}
        assert row == api.get(f"{RUNS}{row['run_id']}/").json()
        assert set(listed["client"]) == set(listed["automation"]) == {"key", "name"}
    assert rows[1]["entry"]["status"] == "pending"
    assert (rows[0]["reason_code"], rows[0]["entry"]) == ("automation_off", None)
    listed_rows = response.json()["results"]
    assert listed_rows[1]["client"] == {"key": "contoso", "name": "Contoso Ltd"}
    assert listed_rows[0]["automation"] == {
        "key": skipped.automation.key,
        "name": skipped.automation.name,
    }
    assert logged.tenant == tenant


def test_run_filters(api, tenant):
    contoso = ClientFactory(tenant=tenant, key="contoso")
    reset = AutomationFactory(tenant=tenant, key="reset")
    a = AutomationRunFactory(tenant=tenant, run_id="a", client=contoso, ticket_id="1001")
    AutomationRunFactory(
        tenant=tenant,
        run_id="b",
        automation=reset,
        decision=AutomationRun.Decision.SKIP,
        skip_reason=AutomationRun.SkipReason.STATUS_OFF,
    )
    AutomationRunFactory(
        tenant=tenant,
        run_id="c",
        client=contoso,
        automation=reset,
        decision=AutomationRun.Decision.SKIP,
        skip_reason=AutomationRun.SkipReason.NOT_COMPLETED,
    )
    AutomationRun.objects.filter(pk=a.pk).update(
        received_at=dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)
    )

    def ids(**params):
        return sorted(run_ids(api.get(RUNS, params)))

    assert ids(client="contoso") == ["a", "c"]
    assert ids(automation="reset") == ["b", "c"]
    assert ids(decision="skip") == ["b", "c"]
    assert ids(decision="log") == ["a"]
    assert ids(reason_code="not_completed") == ["c"]
    assert ids(decision="skip", client="contoso") == ["c"]
    assert ids(ticket="1001") == ["a"]
    assert ids(run_id="b") == ["b"]
    assert ids(received_before="2026-05-02") == ["a"]
    assert ids(received_after="2026-05-02") == ["b", "c"]


@pytest.mark.parametrize(
    "param,value",
    [
        ("decision", "maybe"),
        ("reason_code", "bored"),
        ("received_after", "2026-13-01"),
        ("received_before", "2026-05-01T10:00"),
        ("ticket", "abc"),
        ("run_id", "-starts-with-a-dash"),
        ("automation", "a" * 201),
        ("page_size", "1000"),
        ("cursor", "cD1ub3QtYS1kYXRl"),
    ],
)
def test_bad_run_queries_are_400(api, param, value):
    response = api.get(RUNS, {param: value})
    assert response.status_code == 400, response.content
    assert response.json()["errors"][param]


def test_run_pages_cost_the_same_queries_whatever_their_size(api, tenant, settings):
    settings.PIADESK_API_CACHE_SECONDS = 0  # the key is read on each request, as counted below
    for n in range(60):
        entry_for(tenant, run__run_id=f"l{n}")
        AutomationRunFactory(
            tenant=tenant, run_id=f"s{n}", decision="skip", skip_reason="status_off"
        )
    small = _count_queries(api, RUNS, {"page_size": 5})
    large = _count_queries(api, RUNS, {"page_size": 100})
    assert small == large == 2


def test_runs_paginate_by_received_at(api, tenant):
    for n in range(7):
        AutomationRunFactory(tenant=tenant, run_id=f"r{n}")
    assert walk(api, RUNS, page_size=3) == [f"r{n}" for n in range(6, -1, -1)]


def test_retrieve_still_ignores_the_list_filters(api, tenant):
    AutomationRunFactory(tenant=tenant, run_id="a")
    assert api.get(f"{RUNS}a/", {"decision": "skip", "page_size": "0"}).status_code == 200


# --- keys -------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [ENTRIES, RUNS, f"{ENTRIES}export.csv"])
def test_read_only_keys_may_read_the_history(api, tenant, url):
    entry_for(tenant)
    TenantAPIKey.objects.update(read_only=True)
    assert api.get(url).status_code == 200


@pytest.mark.parametrize("url", [ENTRIES, RUNS, f"{ENTRIES}export.csv"])
@pytest.mark.parametrize("header", [None, "Bearer nope.nope", "Token x"])
def test_the_history_needs_a_key(db, url, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(url)
    assert response.status_code == 401
    assert response.json()["detail"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("url", [ENTRIES, f"{ENTRIES}export.csv"])
def test_the_entry_history_is_read_only(api, url, method):
    assert getattr(api, method)(url, {}, format="json").status_code == 405
