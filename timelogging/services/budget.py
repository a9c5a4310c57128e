"""A request budget per PSA connection, shared by every worker process.

Autotask allows 10,000 requests per rolling hour per *database*, shared by every integration
the MSP runs, and slows down past half of it; the other PSAs publish no number but throttle.
piadesk therefore spends at most ``requests_per_hour`` (the connection's, else the vendor's
default) on each connection, in per-minute slices so that a burst cannot take the whole hour at
once. The count lives in the database (one row per connection, updated under a row lock), so
every worker on every machine shares it.

When the slice is used up the request is not sent: ``BudgetExhausted`` (a RetryableError with
``retry_after`` = the rest of the minute) holds the entry back without using up an attempt,
and the worker moves on to other tenants' entries.
"""

from __future__ import annotations

import datetime as dt
import math

from django.db import IntegrityError, transaction
from django.utils import timezone

from psa.base import ErrorClass, RetryableError
from psa.registry import backend_class
from timelogging.models import PSAConnection, RequestBudget


class BudgetExhausted(RetryableError):
    kind = ErrorClass.THROTTLED


def requests_per_minute(connection: PSAConnection) -> int:
    per_hour = (
        connection.requests_per_hour or backend_class(connection.vendor).default_requests_per_hour
    )
    return max(1, math.ceil(per_hour / 60))


def budget_spend(*, connection: PSAConnection, now: dt.datetime | None = None) -> None:
    """Count one request against the connection's budget, or raise ``BudgetExhausted``."""
    now = now or timezone.now()
    window = now.replace(second=0, microsecond=0)
    limit = requests_per_minute(connection)
    with transaction.atomic():
        budget = _locked_budget(connection_id=connection.pk, window=window)
        if budget.window_start != window:
            budget.window_start, budget.used = window, 0
        if budget.used >= limit:
            wait = (window + dt.timedelta(minutes=1) - now).total_seconds()
            raise BudgetExhausted(
                f"piadesk's request budget for this connection ({limit} per minute) is used "
                "up; the entry waits for the next minute.",
                retry_after=max(1.0, wait),
            )
        budget.used += 1
        budget.save(update_fields=["window_start", "used"])


def _locked_budget(*, connection_id: int, window: dt.datetime) -> RequestBudget:
    budget = RequestBudget.objects.select_for_update().filter(connection_id=connection_id).first()
    if budget is not None:
        return budget
    try:
        with transaction.atomic():
            return RequestBudget.objects.create(connection_id=connection_id, window_start=window)
    except IntegrityError:  # another worker created it first
        return RequestBudget.objects.select_for_update().get(connection_id=connection_id)
