"""Filters of the history API (django-filter), shared by the lists and the CSV export.

Every value is validated before it reaches the database: a bad value is a 400 naming the
parameter and the reason (DjangoFilterBackend raises the form's errors as a ValidationError),
never a 500 from a database that cannot compare it. The schema of each parameter (pattern,
length, format) is spelled out so that clients and the fuzzing tests know what is valid.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field

from timelogging.api.serializers import RUN_ID_PATTERN, TICKET_ID_PATTERN
from timelogging.models import AutomationRun, TimeEntry

KEY_MAX_LENGTH = 200  # Client.key, Automation.key
PSA_USER_MAX_LENGTH = 100  # TimeEntry.psa_user_ref

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# An unencoded "+" in a query string arrives as a space ("...T14:00:00 02:00"): read a space
# before a final HH:MM as the "+" the client meant, so that a hand-typed URL still works.
_SPACE_FOR_PLUS = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")

INSTANT_HELP = (
    "An ISO-8601 date-time with its zone (2026-05-01T14:00:00Z, or 2026-05-01T16:00:00+02:00 "
    "with the + encoded as %2B) or a date (2026-05-01, meaning 00:00 UTC)."
)


def parse_instant(text: str) -> dt.datetime:
    """An aware UTC datetime from an ISO-8601 date-time with a zone, or a date (00:00 UTC).

    Raises ``ValueError`` with a message for the client. A naive date-time is refused (as in
    the ingest): read in the server's zone it would silently shift the range by hours.
    """
    text = _SPACE_FOR_PLUS.sub(r"\1+\2", text.strip())
    value: dt.datetime | None
    try:
        if _DATE_ONLY.match(text):
            value = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)
        else:
            value = parse_datetime(text)
    except ValueError:  # well-formed but impossible, e.g. 2026-02-30
        value = None
    if value is None:
        # (No "%" in messages: django-filter %-formats them.)
        raise ValueError(
            "Not a date-time: give an ISO-8601 date-time with its zone, e.g. "
            "2026-05-01T14:00:00Z, or a date, e.g. 2026-05-01 (00:00 UTC)."
        )
    if timezone.is_naive(value):
        raise ValueError("Give the time zone, e.g. 2026-05-01T14:00:00Z.")
    try:
        # Year 1 with a positive offset (or 9999 with a negative one) is not a UTC datetime.
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("This date-time is out of range.") from None


class InstantField(forms.Field):
    def to_python(self, value: Any) -> dt.datetime | None:
        if value in self.empty_values:
            return None
        try:
            return parse_instant(str(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class InstantFilter(django_filters.Filter):
    field_class = InstantField


def _text_filter(
    field_name: str,
    *,
    help_text: str,
    max_length: int,
    pattern: str | None = None,
    message: str = "",
) -> django_filters.CharFilter:
    """An exact-match text filter whose schema states its length and pattern."""
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "description": help_text,
    }
    validators: list[RegexValidator] = []
    if pattern is not None:
        schema["pattern"] = pattern
        validators.append(RegexValidator(pattern, message))
    # The form field already refuses NUL characters (PostgreSQL cannot store or compare them).
    return extend_schema_field(schema)(
        django_filters.CharFilter(
            field_name=field_name,
            max_length=max_length,
            validators=validators,
            help_text=help_text,
        )
    )


def _range(field_name: str, *, what: str) -> tuple[InstantFilter, InstantFilter]:
    """``<name>_after`` (inclusive) and ``<name>_before`` (exclusive): consecutive ranges
    (a day, then the next) neither overlap nor leave a gap."""

    def instant(lookup_expr: str, help_text: str) -> InstantFilter:
        schema = {"type": "string", "format": "date-time", "description": help_text}
        return extend_schema_field(schema)(
            InstantFilter(field_name=field_name, lookup_expr=lookup_expr, help_text=help_text)
        )

    return (
        instant("gte", f"Only {what} at or after this instant. {INSTANT_HELP}"),
        instant("lt", f"Only {what} before this instant (exclusive). {INSTANT_HELP}"),
    )


RUN_ID_MESSAGE = "A run id is 1-200 characters: letters, digits and . _ : @ + -"
TICKET_ID_MESSAGE = 'Give the PSA\'s numeric ticket id, e.g. "1001".'


class TimeEntryFilter(django_filters.FilterSet):
    client = _text_filter(
        "client__key", help_text="The client's key.", max_length=KEY_MAX_LENGTH
    )
    automation = _text_filter(
        "automation__key", help_text="The automation's key.", max_length=KEY_MAX_LENGTH
    )
    status = django_filters.ChoiceFilter(
        choices=TimeEntry.Status.choices, help_text="The entry's delivery status."
    )
    psa_user = _text_filter(
        "psa_user_ref",
        help_text="The PSA user the entry is logged as: ConnectWise member identifier, "
        "Autotask resource id or HaloPSA agent id (`logged_as.ref`).",
        max_length=PSA_USER_MAX_LENGTH,
    )
    ticket = _text_filter(
        "run__ticket_id",
        help_text="The PSA ticket id.",
        max_length=18,
        pattern=TICKET_ID_PATTERN,
        message=TICKET_ID_MESSAGE,
    )
    run_id = _text_filter(
        "run__run_id",
        help_text="The run's id.",
        max_length=200,
        pattern=RUN_ID_PATTERN,
        message=RUN_ID_MESSAGE,
    )
    created_after, created_before = _range("created_at", what="entries created")

    class Meta:
        model = TimeEntry
        fields: list[str] = []


class AutomationRunFilter(django_filters.FilterSet):
    client = _text_filter("client__key", help_text="The client's key.", max_length=KEY_MAX_LENGTH)
    automation = _text_filter(
        "automation__key", help_text="The automation's key.", max_length=KEY_MAX_LENGTH
    )
    decision = django_filters.ChoiceFilter(
        choices=AutomationRun.Decision.choices, help_text="Whether the run was logged."
    )
    reason_code = django_filters.ChoiceFilter(
        field_name="skip_reason",
        choices=AutomationRun.SkipReason.choices,
        help_text="Why a skipped run was not logged.",
    )
    ticket = _text_filter(
        "ticket_id",
        help_text="The PSA ticket id.",
        max_length=18,
        pattern=TICKET_ID_PATTERN,
        message=TICKET_ID_MESSAGE,
    )
    run_id = _text_filter(
        "run_id",
        help_text="The run's id.",
        max_length=200,
        pattern=RUN_ID_PATTERN,
        message=RUN_ID_MESSAGE,
    )
    received_after, received_before = _range("received_at", what="runs received")

    class Meta:
        model = AutomationRun
        fields: list[str] = []
