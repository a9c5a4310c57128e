"""The ingest contract the automation service codes against (keep it exactly)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from timelogging.models import AutomationRun, TimeEntry

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,199}$"
# A run cannot finish in the future; allow this much for the service's clock.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
SUMMARY_MAX_CHARS = 3500


class AwareDateTimeField(serializers.DateTimeField):
    """ISO-8601 with an explicit zone (``Z`` or ``+02:00``); naive times are refused.

    A naive time would silently be read in the server's zone and log the wrong hour.
    """

    default_error_messages = {
        "naive": "Give the time zone, e.g. 2026-05-01T14:00:00Z or 2026-05-01T16:00:00+02:00.",
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        result = super().to_internal_value(value)
        return result.astimezone(dt.UTC)


class KeyedRefSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RunReportSerializer(serializers.Serializer):
    run_id = serializers.RegexField(
        RUN_ID_PATTERN,
        max_length=200,
        error_messages={
            "invalid": "Use 1-200 characters: letters, digits and . _ : @ + - "
            "(starting with a letter or digit)."
        },
    )
    automation = KeyedRefSerializer()
    client = KeyedRefSerializer()
    ticket_id = serializers.RegexField(
        r"^[0-9]{1,18}$",
        error_messages={"invalid": 'Give the PSA\'s numeric ticket id, e.g. "1001".'},
    )
    started_by = serializers.EmailField(max_length=254)
    started_at = AwareDateTimeField()
    completed_at = AwareDateTimeField()
    outcome = serializers.ChoiceField(
        choices=AutomationRun.Outcome.choices, default=AutomationRun.Outcome.COMPLETED
    )
    summary = serializers.CharField(
        max_length=SUMMARY_MAX_CHARS, required=False, allow_blank=True, default=""
    )

    def to_internal_value(self, data):
        # An int ticket id is accepted as its digits (bool is an int in Python: refuse it).
        if isinstance(data, dict) and type(data.get("ticket_id")) is int:
            data = {**data, "ticket_id": str(data["ticket_id"])}
        return super().to_internal_value(data)

    def validate_started_by(self, value: str) -> str:
        return value.strip().lower()

    def validate(self, attrs):
        now = timezone.now()
        errors = {}
        if attrs["completed_at"] < attrs["started_at"]:
            errors["completed_at"] = ["completed_at is before started_at."]
        elif attrs["completed_at"] > now + FUTURE_TOLERANCE:
            errors["completed_at"] = ["completed_at is in the future."]
        if attrs["started_at"] > now + FUTURE_TOLERANCE:
            errors["started_at"] = ["started_at is in the future."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class PSAUserSerializer(serializers.Serializer):
    ref = serializers.CharField(source="psa_user_ref")
    name = serializers.CharField(source="psa_user_name")


class TimeEntrySerializer(serializers.ModelSerializer):
    logged_as = serializers.SerializerMethodField(
        help_text="The PSA user the entry is logged as, once resolved."
    )
    error = serializers.SerializerMethodField()

    class Meta:
        model = TimeEntry
        fields = [
            "status",
            "minutes",
            "start",
            "end",
            "log_as",
            "logged_as",
            "psa_entry_id",
            "attempts",
            "error_class",
            "error",
            "posted_at",
        ]

    def get_logged_as(self, entry: TimeEntry) -> dict | None:
        if not entry.psa_user_ref:
            return None
        return {"ref": entry.psa_user_ref, "name": entry.psa_user_name}

    def get_error(self, entry: TimeEntry) -> str | None:
        return entry.error or None


class RunSerializer(serializers.ModelSerializer):
    """What the API answers about a run: the decision, its reason, and the entry."""

    reason_code = serializers.CharField(source="skip_reason")
    reason = serializers.CharField()
    entry = serializers.SerializerMethodField()

    class Meta:
        model = AutomationRun
        fields = [
            "run_id",
            "decision",
            "reason_code",
            "reason",
            "ticket_id",
            "started_by",
            "started_at",
            "completed_at",
            "outcome",
            "received_at",
            "entry",
        ]

    def get_entry(self, run: AutomationRun) -> dict | None:
        entry = getattr(run, "entry", None) if run.decision == run.Decision.LOG else None
        return TimeEntrySerializer(entry).data if entry is not None else None
