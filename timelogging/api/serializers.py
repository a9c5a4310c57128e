"""The API's representations: the ingest contract the automation service codes against (keep
it exactly), the history that auditors read, and the error shape."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from timelogging.models import MAX_MINUTES, AutomationRun, TimeEntry

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,199}$"
TICKET_ID_PATTERN = r"^[0-9]{1,18}$"
# A run cannot finish in the future; allow this much for the service's clock.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
# Runs before this are refused: a year 1900 or 0001 is a broken clock or a bad default, and
# the PSAs refuse (or mis-store) such entries.
EARLIEST_START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# The longest run accepted: what one time entry may log (MAX_MINUTES, 24 hours). A longer one
# is a wrong start or end; it would be logged as 24 hours without anyone noticing.
MAX_RUN = dt.timedelta(minutes=MAX_MINUTES)
SUMMARY_MAX_CHARS = 3500
_started_by = AutomationRun._meta.get_field("started_by")
assert isinstance(_started_by, models.CharField) and _started_by.max_length is not None
STARTED_BY_MAX_LENGTH: int = _started_by.max_length


class APIDateTimeField(serializers.DateTimeField):
    """DRF's, in the server's zone (``TIME_ZONE``, UTC unless set; "Z" for UTC).

    DRF looks up the thread's current zone for every time it writes (a context-local read,
    a third of the cost of the ingest's answer); the API never activates a zone (the staff
    pages do, for their own rendering only), so the current zone is the server's.
    """

    def default_timezone(self) -> Any:
        return timezone.get_default_timezone() if settings.USE_TZ else None


class AwareDateTimeField(APIDateTimeField):
    """ISO-8601 with an explicit zone (``Z`` or ``+02:00``); naive times are refused.

    A naive time would silently be read in the server's zone and log the wrong hour.
    """

    default_error_messages = {
        "naive": "Give the time zone, e.g. 2026-05-01T14:00:00Z or 2026-05-01T16:00:00+02:00.",
        "range": "This time is out of range: give a time from 2000-01-01.",
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
        try:
            return result.astimezone(dt.UTC)
        except OverflowError:
            # Year 1 at +02:00 is before year 1 in UTC (or 9999 at -02:00 after 9999).
            self.fail("range")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": TICKET_ID_PATTERN},
            {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
        ],
        "description": 'The PSA\'s numeric ticket id, as a string ("1001") or a number.',
    }
)
class TicketIdField(serializers.RegexField):
    """The ticket id; ``RunReportSerializer.to_internal_value`` turns a number into digits."""


class SharedFieldsMixin:
    """Fields made and bound once per serializer class, then shared by its instances.

    DRF gives every serializer instance a deep copy of its fields (a ModelSerializer first maps
    every model field again: kwargs, validators, choices), and an ingest makes three: the
    report, the run and its entry. That was a quarter of an ingest's CPU. The fields hold no
    state of one validation or representation (it lives on the serializer instance: its data,
    errors, instance), so they are bound once to a prototype instance of the class, without
    data or context, and every instance uses them. Only for serializers whose fields and
    methods read no ``context`` and that are never ``partial`` (the prototype is the fields'
    ``root``).

    The representation (``to_representation``) is DRF's, with each field's way to its value
    worked out once per class too: a model column is read as the attribute it is, where DRF
    walked the field's ``source`` through its generic look-up (mappings, callables, missing
    relations) for every field of every row; any other field keeps DRF's ``get_attribute``.
    That halved the ingest answer's cost (the run and its entry: 24 fields).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # DRF's ``fields`` is a cached_property: filled in here, it is never computed.
        self.__dict__["fields"] = type(self)._shared_fields()

    @classmethod
    def _shared_fields(cls) -> Any:
        shared = cls.__dict__.get("_shared_fields_of_class")
        if shared is None:
            prototype = object.__new__(cls)
            super(SharedFieldsMixin, prototype).__init__()  # DRF's own __init__, not ours
            shared = prototype.fields  # type: ignore[attr-defined]  # DRF computes them here
            _search_for_surrogates(shared)
            cls._shared_fields_of_class = shared  # type: ignore[attr-defined]  # per class
            cls._prototype_of_class = prototype  # type: ignore[attr-defined]  # per class
        return shared

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        """``cls(instance).data`` as a plain dict (what a nested serializer gives), without
        making a serializer instance: the fields' root, the prototype, represents it."""
        cls._shared_fields()
        prototype: SharedFieldsMixin = cls.__dict__["_prototype_of_class"]
        return prototype.to_representation(instance)

    @classmethod
    def _readers(cls) -> list[tuple[str, Callable[[Any], Any], serializers.Field]]:
        """(name, how to read its value from an instance, field) of each readable field."""
        readers = cls.__dict__.get("_readers_of_class")
        if readers is None:
            model = getattr(getattr(cls, "Meta", None), "model", None)
            columns = (
                {f.name for f in model._meta.concrete_fields if not f.is_relation}
                if model is not None
                else set()
            )
            readers = []
            for field in cls._shared_fields().values():
                if field.write_only:
                    continue
                plain = (
                    type(field).get_attribute is serializers.Field.get_attribute
                    and len(field.source_attrs) == 1
                    and field.source_attrs[0] in columns
                )
                read = attrgetter(field.source_attrs[0]) if plain else field.get_attribute
                readers.append((field.field_name, read, field))
            cls._readers_of_class = readers  # type: ignore[attr-defined]  # per class
        return readers

    def to_representation(self, instance: Any) -> dict[str, Any]:
        representation: dict[str, Any] = {}
        for name, read, field in type(self)._readers():
            try:
                value = read(instance)
            except SkipField:
                continue
            # As DRF: a related field's primary-key shortcut is None when the key is.
            if (value.pk if isinstance(value, PKOnlyObject) else value) is None:
                representation[name] = None
            else:
                representation[name] = field.to_representation(value)
        return representation


class SurrogatesRefused(ProhibitSurrogateCharactersValidator):
    """DRF's refusal of lone surrogates (same message and code), by one regular expression
    search instead of a Python loop over every character of every text field: a sixth of a
    report's validation at a few dozen characters, most of it for a 3,500-character summary."""

    _surrogate = re.compile("[\ud800-\udfff]")

    def __call__(self, value: Any) -> None:
        text = str(value)
        if text.isascii():  # no surrogate; answered from the string's header, no scan
            return
        found = self._surrogate.search(text)
        if found is not None:
            message = self.message.format(code_point=ord(found.group()))
            raise serializers.ValidationError(message, code=self.code)


def _search_for_surrogates(fields: Any) -> None:
    """Every text field of ``fields`` (nested serializers' too) checked by SurrogatesRefused."""
    for field in fields.values():
        field.validators = [
            SurrogatesRefused() if isinstance(v, ProhibitSurrogateCharactersValidator) else v
            for v in field.validators
        ]
        if isinstance(field, serializers.Serializer):
            _search_for_surrogates(field.fields)


class KeyedRefSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RunReportSerializer(SharedFieldsMixin, serializers.Serializer):
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
    ticket_id = TicketIdField(
        TICKET_ID_PATTERN,
        error_messages={"invalid": 'Give the PSA\'s numeric ticket id, e.g. "1001".'},
    )
    started_by = serializers.EmailField(max_length=STARTED_BY_MAX_LENGTH)
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
        normalised = value.strip().lower()
        # Lower-casing can lengthen a string ("İ" becomes "i" + a combining dot): the stored
        # value must still fit the column (PostgreSQL refuses it with a 500 otherwise).
        if len(normalised) > STARTED_BY_MAX_LENGTH:
            raise serializers.ValidationError(
                f"Ensure this field has no more than {STARTED_BY_MAX_LENGTH} characters."
            )
        return normalised

    def validate(self, attrs):
        now = timezone.now()
        errors = {}
        if attrs["completed_at"] < attrs["started_at"]:
            errors["completed_at"] = ["completed_at is before started_at."]
        elif attrs["completed_at"] > now + FUTURE_TOLERANCE:
            errors["completed_at"] = ["completed_at is in the future."]
        elif attrs["completed_at"] - attrs["started_at"] > MAX_RUN:
            errors["completed_at"] = [
                "The run lasted longer than 24 hours, the most piadesk logs for one run: check "
                "started_at and completed_at."
            ]
        if attrs["started_at"] > now + FUTURE_TOLERANCE:
            errors["started_at"] = ["started_at is in the future."]
        elif attrs["started_at"] < EARLIEST_START:
            errors["started_at"] = ["started_at is before 2000-01-01: check the clock that set it."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class PSAUserSerializer(serializers.Serializer):
    ref = serializers.CharField(source="psa_user_ref")
    name = serializers.CharField(source="psa_user_name")


# For the schema only: the ``logged_as`` object, built from the entry's two PSA user fields.
# (Docstrings of serializers become the schema's descriptions, hence comments for the rest.)
class LoggedAsSerializer(serializers.Serializer):
    """The PSA user a time entry is logged as."""

    ref = serializers.CharField(help_text="The PSA's identifier of the user.")
    name = serializers.CharField(help_text="The user's name in the PSA (may be empty).")


# How the API writes a time (ISO 8601, in the current time zone, "Z" for UTC); a field is made
# once, not for each entry (DRF's fields are costly to make, and this one keeps no state).
_DATETIME = APIDateTimeField()
# The model serializers' fields, with the API's times.
API_FIELD_MAPPING = {
    **serializers.ModelSerializer.serializer_field_mapping,
    models.DateTimeField: APIDateTimeField,
}


class TimeEntrySerializer(SharedFieldsMixin, serializers.ModelSerializer):
    serializer_field_mapping = API_FIELD_MAPPING
    logged_as = serializers.SerializerMethodField(
        help_text="The PSA user the entry is logged as, once resolved."
    )
    error = serializers.SerializerMethodField(help_text="What the PSA said when posting failed.")
    waiting_for = serializers.SerializerMethodField(
        help_text="What an entry not yet posted waits for, without an attempt: piadesk's "
        "request budget for the connection (budget), a free posting slot on it (concurrency), "
        "or the PSA's Retry-After (retry_after); null when it is not waiting. Waits never "
        "count as attempts nor fail an entry."
    )
    next_attempt_at = serializers.SerializerMethodField(
        help_text="When the next try is due (the end of a wait, or of the backoff after a "
        "failed attempt); null when the entry is not queued (posted, failed, held, "
        "discarded, or being posted)."
    )

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
            "waiting_for",
            "next_attempt_at",
            "posted_at",
        ]

    # (The schema of a method field is declared on its method: field instances are copied
    # when a serializer is instantiated, which drops a decoration of the instance.)
    @extend_schema_field(LoggedAsSerializer(allow_null=True))
    def get_logged_as(self, entry: TimeEntry) -> dict | None:
        if not entry.psa_user_ref:
            return None
        return {"ref": entry.psa_user_ref, "name": entry.psa_user_name}

    @extend_schema_field({"type": "string", "nullable": True})
    def get_error(self, entry: TimeEntry) -> str | None:
        return entry.error or None

    @extend_schema_field(
        {"type": "string", "enum": [*TimeEntry.WaitReason.values, None], "nullable": True}
    )
    def get_waiting_for(self, entry: TimeEntry) -> str | None:
        # The same rule as the entry's page (TimeEntry.wait_text): a wait left on an entry
        # that is no longer queued is not one.
        return entry.waiting_for if entry.wait_text else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_attempt_at(self, entry: TimeEntry) -> str | None:
        if entry.status not in TimeEntry.OPEN_STATUSES or entry.next_attempt_at is None:
            return None
        return _DATETIME.to_representation(entry.next_attempt_at)


class RunSerializer(SharedFieldsMixin, serializers.ModelSerializer):
    """What the API answers about a run: the decision, its reason, and the entry."""

    serializer_field_mapping = API_FIELD_MAPPING

    reason_code = serializers.CharField(
        source="skip_reason", help_text="Why a skipped run was not logged; empty when logged."
    )
    reason = serializers.CharField(help_text="The decision in words.")
    entry = serializers.SerializerMethodField(help_text="The time entry; null when skipped.")

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

    @extend_schema_field(TimeEntrySerializer(allow_null=True))
    def get_entry(self, run: AutomationRun) -> dict | None:
        entry = getattr(run, "entry", None) if run.decision == run.Decision.LOG else None
        return TimeEntrySerializer.represent(entry) if entry is not None else None


# --- the history (read-only) ------------------------------------------------------------------
class KeyedNameSerializer(serializers.Serializer):
    """A client or an automation: the automation service's key and the display name."""

    key = serializers.CharField()
    name = serializers.CharField(help_text="The display name (may be empty).")


# Not added to RunSerializer itself: that one is the ingest's answer, kept exactly.
class RunHistorySerializer(RunSerializer):
    """A run in the history: the run, its decision and entry, its client and automation."""

    client = KeyedNameSerializer()
    automation = KeyedNameSerializer()

    class Meta(RunSerializer.Meta):
        fields = [
            RunSerializer.Meta.fields[0],  # run_id
            "client",
            "automation",
            *RunSerializer.Meta.fields[1:],
        ]


# Expects selectors.time_entries_history (run, client and automation joined in).
class TimeEntryHistorySerializer(TimeEntrySerializer):
    """A time entry in the history, with the run it logs and the run's client and automation."""

    run_id = serializers.CharField(source="run.run_id")
    reference = serializers.CharField(
        source="run.reference_text",
        help_text="The stable reference written in the entry's notes in the PSA.",
    )
    ticket_id = serializers.CharField(source="run.ticket_id")
    client = KeyedNameSerializer(source="run.client")
    automation = KeyedNameSerializer(source="run.automation")
    started_by = serializers.CharField(
        source="run.started_by", help_text="The e-mail of who started the automation."
    )

    class Meta(TimeEntrySerializer.Meta):
        fields = [
            "run_id",
            "reference",
            "ticket_id",
            "client",
            "automation",
            "started_by",
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
            "waiting_for",
            "next_attempt_at",
            "created_at",
            "posted_at",
        ]


# For the schema only: the shape of every error answer (see api.errors).
class ErrorSerializer(serializers.Serializer):
    """An error: what went wrong and, for invalid input, the reasons per field."""

    detail = serializers.CharField(help_text="What went wrong, in words.")
    errors = serializers.DictField(  # type: ignore[assignment]  # the error body's "errors"; this serializer only documents it, never validates
        required=False,
        help_text="For invalid input: the reasons per field or query parameter, e.g. "
        '{"ticket_id": ["..."]} (nested objects have their own fields).',
    )
