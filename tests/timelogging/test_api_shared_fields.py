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
