"""Input out of range is a client error, never a 500 (issue 9, finding 4)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from timelogging.admin import admin_site
from timelogging.models import AutomationRun

pytestmark = pytest.mark.django_db
URL = "/api/v1/automation-runs/"


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "started_at",
    ["1900-01-01T10:00:00Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z"],
)
def test_runs_starting_before_2000_are_refused(api, run_payload, started_at):
    response = api.post(URL, run_payload(started_at=started_at), format="json")
    assert response.status_code == 400, response.content
    assert "2000-01-01" in response.json()["errors"]["started_at"][0]
    assert AutomationRun.objects.count() == 0


def test_a_time_that_does_not_fit_in_utc_is_a_field_error(api, run_payload):
    # 00:30 on 1 January of year 1 at +02:00 is before year 1 in UTC: OverflowError (a 500).
    response = api.post(
        URL,
        run_payload(
            started_at="0001-01-01T00:30:00+02:00", completed_at="9999-12-31T23:00:00-02:00"
        ),
        format="json",
    )
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert errors["started_at"] and errors["completed_at"]


def test_runs_starting_more_than_a_day_ahead_are_refused(api, run_payload):
    later = timezone.now() + dt.timedelta(days=2)
    response = api.post(
        URL,
        run_payload(started_at=iso(later), completed_at=iso(later + dt.timedelta(minutes=5))),
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["started_at"]


def test_runs_longer_than_the_maximum_are_refused(api, run_payload):
    end = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=1)
    start = end - dt.timedelta(hours=24, seconds=1)
    response = api.post(
        URL, run_payload(started_at=iso(start), completed_at=iso(end)), format="json"
    )
    assert response.status_code == 400
    assert "24 hours" in response.json()["errors"]["completed_at"][0]
    # Exactly the maximum is fine.
    response = api.post(
        URL,
        run_payload(
            run_id="run-max", started_at=iso(end - dt.timedelta(hours=24)), completed_at=iso(end)
        ),
        format="json",
    )
    assert response.status_code == 201, response.content


# --- every /api/ answer is JSON ---------------------------------------------------------------
def test_an_oversized_body_is_413_json_saying_the_limit(api, run_payload, settings):
    body = json.dumps(run_payload(summary="x" * 3000, padding="y" * (3 * 1024 * 1024)))
    response = api.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert f"{limit:,}" in response.json()["detail"]
    assert AutomationRun.objects.count() == 0


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_method_not_allowed_is_405_json(api, method):
    response = getattr(api, method)(URL, {}, format="json")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]


def test_a_500_under_the_api_is_json(api, monkeypatch):
    from rest_framework.test import APIClient

    from timelogging.api import views

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.AutomationRunViewSet, "list", boom, raising=False)
    client = APIClient(raise_request_exception=False)
    client.credentials(**api._credentials)
    response = client.get(URL)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Server error."}


# --- admin parameters out of range ----------------------------------------------------------
def test_reports_far_in_the_future_are_not_a_500(admin_client, tenant):
    url = reverse("admin:reports")
    for params in (
        {"tenant": tenant.pk, "start": "9999-12-01", "end": "9999-12-31"},
        {"tenant": tenant.pk, "start": "9999-12-01"},
        {"tenant": tenant.pk, "period": "month", "start": "9999-12-01", "end": "9999-12-31"},
        {"tenant": tenant.pk, "start": "0001-01-01", "end": "0001-01-31"},
    ):
        response = admin_client.get(url, params)
        assert response.status_code == 200, params


HUGE = "99999999999999999999"


def test_list_filters_with_huge_ids_are_not_a_500(admin_client, tenant):
    for model in admin_site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        for params in (
            {"tenant": HUGE},
            {"tenant__id__exact": HUGE},
            {"tenant__exact": HUGE},
            {"connection__id__exact": HUGE},
            {"client": HUGE},
            {"automation": HUGE},
            {"q": HUGE},
        ):
            response = admin_client.get(url, params)
            assert response.status_code in (200, 302), (url, params, response.status_code)
