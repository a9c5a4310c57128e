"""A tenant's time zone (issue 12): its pages, filters, reports and CSV export show its zone,
labelled; the API stays UTC."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import AutomationRunFactory, TenantFactory, TimeEntryFactory
from tests.timelogging.admin_support import admin_url, changeform_data, messages_text
from tests.timelogging.tenancy import make_member
from timelogging.models import Tenant, TenantAPIKey, TimeEntry

pytestmark = pytest.mark.django_db

NEW_YORK = "America/New_York"
# 03:00 UTC on 15 January is 22:00 EST on the 14th in New York.
LATE_EVENING = dt.datetime(2026, 1, 15, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def tenant():
    return TenantFactory(name="Acme", time_zone=NEW_YORK)


@pytest.fixture
def entry(tenant):
    run = AutomationRunFactory(tenant=tenant, run_id="late-run", started_at=LATE_EVENING)
    entry = TimeEntryFactory(run=run, status=TimeEntry.Status.POSTED)
    TimeEntry.objects.filter(pk=entry.pk).update(created_at=LATE_EVENING)
    return entry


@pytest.fixture
def staff(client, tenant):
    client.force_login(make_member(tenant, "staff"))
    return client


@override_settings(TIME_ZONE="Europe/London")
def test_a_new_tenant_takes_the_sites_zone():
    assert Tenant.objects.create(name="New").time_zone == "Europe/London"


def test_the_zone_is_a_select_on_the_tenant_page_and_a_change_is_listed(admin_client, tenant):
    page = admin_client.get(admin_url(tenant, "change"))
    html = page.content.decode()
    assert '<select name="time_zone"' in html
    assert '<option value="America/New_York" selected>America/New York</option>' in html
    data = changeform_data(page, time_zone="Europe/Paris")
    response = admin_client.post(admin_url(tenant, "change"), data, follow=True)
    assert any("Time zone: America/New_York → Europe/Paris" in m for m in messages_text(response))
    tenant.refresh_from_db()
    assert tenant.time_zone == "Europe/Paris"


def test_an_unknown_zone_is_refused_with_its_reason(admin_client, tenant):
    page = admin_client.get(admin_url(tenant, "change"))
    data = changeform_data(page, time_zone="Mars/Olympus_Mons")
    response = admin_client.post(admin_url(tenant, "change"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["time_zone"] == [
        "“Mars/Olympus_Mons” is not a time zone: choose one like America/New_York or Europe/London."
    ]


def test_lists_and_detail_show_the_tenants_zone_labelled(staff, entry):
    listing = staff.get(admin_url(TimeEntry, "changelist")).content.decode()
    assert "2026-01-14 22:00 EST" in listing
    assert "2026-01-15 03:00" not in listing
    detail = staff.get(admin_url(entry, "change")).content.decode()
    assert "2026-01-14 22:00 EST" in detail


def test_superusers_see_the_zone_of_the_tenant_they_look_at(admin_client, tenant, entry):
    everyone = admin_client.get(admin_url(TimeEntry, "changelist")).content.decode()
    assert "2026-01-15 03:00 UTC" in everyone  # no tenant chosen: the site's zone
    chosen = admin_client.get(
        admin_url(TimeEntry, "changelist"), {"tenant__id__exact": tenant.pk}
    ).content.decode()
    assert "2026-01-14 22:00 EST" in chosen
    detail = admin_client.get(admin_url(entry, "change")).content.decode()
    assert "2026-01-14 22:00 EST" in detail


def test_date_filters_are_days_in_the_tenants_zone(staff, entry):
    changelist = admin_url(TimeEntry, "changelist")
    on_14th = staff.get(changelist, {"created_from": "2026-01-14", "created_to": "2026-01-14"})
    assert [e.pk for e in on_14th.context["cl"].result_list] == [entry.pk]
    on_15th = staff.get(changelist, {"created_from": "2026-01-15", "created_to": "2026-01-15"})
    assert list(on_15th.context["cl"].result_list) == []


def test_reports_count_days_and_weeks_in_the_tenants_zone(staff, tenant, entry):
    # 22:00 EST on Wednesday 14 January: the week of Monday 12 January, in New York.
    response = staff.get(
        reverse("admin:reports"), {"tenant": tenant.pk, "start": "2026-01-14", "end": "2026-01-14"}
    )
    report = response.context["report"]
    assert report["time_zone"] == NEW_YORK
    assert report["total_entries"] == 1
    assert f"dates are in {NEW_YORK}" in response.content.decode()
    next_day = staff.get(
        reverse("admin:reports"), {"tenant": tenant.pk, "start": "2026-01-15", "end": "2026-01-15"}
    )
    assert next_day.context["report"]["total_entries"] == 0


def test_the_admin_export_is_in_the_tenants_zone_labelled(staff, entry):
    response = staff.get(admin_url(TimeEntry, "export_csv"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header, row = list(csv.reader(io.StringIO(text)))
    cells = dict(zip(header, row, strict=True))
    assert cells["start (America/New_York)"] == "2026-01-14T22:00:00-05:00"
    assert cells["created_at (America/New_York)"] == "2026-01-14T22:00:00-05:00"


def test_the_api_stays_utc(tenant, entry):
    _, key = TenantAPIKey.objects.create_key(name="svc", tenant=tenant)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    [item] = api.get("/api/v1/time-entries/").json()["results"]
    assert item["start"] in ("2026-01-15T03:00:00Z", "2026-01-15T03:00:00+00:00")
    export = api.get("/api/v1/time-entries/export.csv")
    text = b"".join(export.streaming_content).decode()
    header, row = list(csv.reader(io.StringIO(text)))
    assert "start" in header
    assert dict(zip(header, row, strict=True))["start"] == "2026-01-15T03:00:00+00:00"
