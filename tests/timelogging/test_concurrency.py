"""Simultaneous submissions of the same run, and two workers on the same entry."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import responses
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import AutomationRunFactory, PSAConnectionFactory, TimeEntryFactory
from timelogging.models import AutomationRun, TimeEntry
from timelogging.tasks import post_time_entry

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_identical_submissions_make_one_run_and_one_entry(api_key, run_payload):
    payload = json.dumps(run_payload(run_id="same-run"))
    barrier = threading.Barrier(20)

    def submit(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        barrier.wait()
        try:
            response = client.generic(
                "POST", "/api/v1/automation-runs/", payload, content_type="application/json"
            )
            return response.status_code, response.json()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(submit, range(20)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [201], statuses
    assert AutomationRun.objects.count() == 1
    assert TimeEntry.objects.count() == 1
    bodies = {json.dumps(body["entry"]["start"]) for _, body in results}
    assert len(bodies) == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks are what is tested (PostgreSQL)"
)
def test_two_workers_never_post_the_same_entry(tenant):
    PSAConnectionFactory(tenant=tenant)
    run = AutomationRunFactory(tenant=tenant, ticket_id="1001")
    entry = TimeEntryFactory(run=run, log_as="specified", psa_user_ref="timelogging")
    site = "https://cw.example.com"
    barrier = threading.Barrier(4)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{site}/login/companyinfo/acme", json={"Codebase": "v2025_1/"})
        mock.post(f"{site}/v2025_1/apis/3.0/time/entries", json={"id": 1}, status=201)

        def work(_):
            barrier.wait()
            try:
                return post_time_entry(entry.pk)
            finally:
                connections.close_all()

        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = sorted(pool.map(work, range(4)))
        posts = [c for c in mock.calls if c.request.method == "POST"]
    assert outcomes.count("posted") == 1, outcomes
    assert len(posts) == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent conditional updates (PostgreSQL)"
)
def test_concurrent_workers_never_spend_past_the_request_budget(tenant):
    from timelogging.models import RequestBudget
    from timelogging.services.budget import BudgetExhausted, budget_spend

    psa_connection = PSAConnectionFactory(tenant=tenant, requests_per_hour=25 * 60)  # 25/min
    barrier = threading.Barrier(8)

    def spend(_):
        barrier.wait()
        spent = 0
        try:
            for _ in range(10):
                try:
                    budget_spend(connection=psa_connection)
                    spent += 1
                except BudgetExhausted:
                    pass
            return spent
        finally:
            connections.close_all()

    minute = timezone.now().minute
    with ThreadPoolExecutor(max_workers=8) as pool:
        spent = sum(pool.map(spend, range(8)))
    assert RequestBudget.objects.get(connection=psa_connection).used <= 25
    if timezone.now().minute == minute:  # else a second minute's 25 were allowed too
        assert spent == 25  # of 80 tries


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent claims under row locks (PostgreSQL)"
)
def test_concurrent_claims_never_exceed_the_connections_concurrency_cap(tenant):
    from timelogging.services.posting import _claim

    PSAConnectionFactory(tenant=tenant, max_concurrency=3)
    entries = [
        TimeEntryFactory(run=AutomationRunFactory(tenant=tenant), log_as="specified")
        for _ in range(8)
    ]
    barrier = threading.Barrier(8)

    def claim(entry_id):
        barrier.wait()
        try:
            outcome = _claim(entry_id=entry_id)
            return "claimed" if isinstance(outcome, tuple) else outcome
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(claim, [e.pk for e in entries]))
    assert outcomes == ["claimed"] * 3 + ["deferred (connection busy)"] * 5, outcomes
    assert TimeEntry.objects.filter(status="posting").count() == 3
    waiting = TimeEntry.objects.filter(status="retry_wait", waiting_for="concurrency")
    assert waiting.count() == 5
    assert not waiting.exclude(attempts=0).exists()  # a wait is not an attempt
