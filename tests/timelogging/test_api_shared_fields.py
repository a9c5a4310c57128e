"""Serializers sharing their fields (api/serializers.py SharedFieldsMixin) keep each
validation's and representation's results apart, across instances and threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.factories import AutomationRunFactory, TimeEntryFactory
from timelogging.api.serializers import RunReportSerializer, RunSerializer


def test_validations_share_fields_but_not_results(run_payload):
    assert RunReportSerializer().fields is RunReportSerializer().fields

    def validate(i):
        payload = run_payload(run_id=f"r-{i}") if i % 2 else run_payload(ticket_id="x", run_id="")
        report = RunReportSerializer(data=payload)
        return i, report.is_valid(), report.validated_data if i % 2 else report.errors

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(validate, range(400)))
    for i, valid, outcome in results:
        if i % 2:
            assert valid and outcome["run_id"] == f"r-{i}"
        else:
            assert not valid and set(outcome) == {"run_id", "ticket_id"}


@pytest.mark.django_db
def test_representations_are_each_their_runs():
    logged = TimeEntryFactory(minutes=7).run
    skipped = AutomationRunFactory(decision="skip", skip_reason="status_off")
    first, second = RunSerializer(logged).data, RunSerializer(skipped).data
    assert (first["run_id"], first["entry"]["minutes"]) == (logged.run_id, 7)
    assert (second["run_id"], second["entry"], second["reason_code"]) == (
        skipped.run_id,
        None,
        "status_off",
    )


def _entries_of_every_kind():
    import datetime as dt

    from django.utils import timezone

    now = timezone.now()
    return [
        TimeEntryFactory(),  # pending, nothing resolved
        TimeEntryFactory(
            status="posted",
            psa_entry_id="9001",
            psa_user_ref="u-17",
            psa_user_name="Time Logging",
            attempts=1,
            posted_at=now,
        ),
        TimeEntryFactory(
            status="retry_wait",
            attempts=2,
            error_class="throttled",
            error="429 Too Many Requests",
            waiting_for="retry_after",
            next_attempt_at=now + dt.timedelta(minutes=3),
        ),
        TimeEntryFactory(status="failed", error="The ticket is closed.", attempts=10),
    ]


@pytest.mark.django_db
def test_the_representations_are_drfs_own():
    """SharedFieldsMixin.to_representation reads model columns directly: the result is what
    DRF's generic Serializer.to_representation gives, for every serializer and kind of row."""
    from rest_framework import serializers

    from timelogging.api.serializers import (
        RunHistorySerializer,
        TimeEntryHistorySerializer,
        TimeEntrySerializer,
    )
    from timelogging.selectors import automation_runs_history, time_entries_history

    entries = _entries_of_every_kind()
    skipped = AutomationRunFactory(decision="skip", skip_reason="client_not_in_scope")
    drf = serializers.Serializer.to_representation
    for entry in entries:
        assert TimeEntrySerializer.represent(entry) == drf(TimeEntrySerializer(entry), entry)
        assert TimeEntrySerializer(entry).data == drf(TimeEntrySerializer(entry), entry)
    for run in [entry.run for entry in entries] + [skipped]:
        assert RunSerializer(run).data == drf(RunSerializer(run), run)
    tenant_ids = {entry.tenant_id for entry in entries} | {skipped.tenant_id}
    for run in automation_runs_history(tenant_ids=tenant_ids):
        assert RunHistorySerializer(run).data == drf(RunHistorySerializer(run), run)
    for entry in time_entries_history(tenant_ids=tenant_ids):
        history = TimeEntryHistorySerializer(entry)
        assert history.data == drf(history, entry)
        assert history.data["client"]["key"] == entry.run.client.key


@pytest.mark.django_db
def test_the_api_writes_times_in_the_servers_zone(settings):
    """Whatever zone a staff page activated in the thread: the API's times are the server's
    (UTC, written with "Z", unless TIME_ZONE says otherwise)."""
    from django.utils import timezone

    run = TimeEntryFactory().run
    with timezone.override("America/New_York"):
        answer = RunSerializer(run).data
    assert answer["started_at"].endswith("Z") and answer["entry"]["start"].endswith("Z")
    settings.TIME_ZONE = "Asia/Tokyo"
    assert RunSerializer(run).data["started_at"].endswith("+09:00")


def test_text_fields_refuse_surrogates_by_one_search():
    from rest_framework.validators import ProhibitSurrogateCharactersValidator

    from timelogging.api.serializers import SurrogatesRefused

    fields = RunReportSerializer().fields
    texts = [fields["run_id"], fields["summary"], fields["client"].fields["name"]]
    for field in texts:
        kinds = [type(v) for v in field.validators]
        assert SurrogatesRefused in kinds and ProhibitSurrogateCharactersValidator not in kinds
