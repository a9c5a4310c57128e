"""A request budget per PSA connection, shared by every worker process.

Autotask allows 10,000 requests per rolling hour per *database*, shared by every integration
the MSP runs, and slows down past half of it; the other PSAs publish no number but throttle.
piadesk therefore spends at most ``requests_per_hour`` (the connection's, else the vendor's
default) on each connection, in per-minute slices so that a burst cannot take the whole hour at
once. The count lives in the database (one row per connection), so every worker on every
machine shares it. Spending is one conditional ``UPDATE`` in autocommit: it increments the
count only while it is under the limit (or starts the new minute at 1), and the row count says
whether the request may go. The row is locked only for that statement (PostgreSQL re-checks the
condition on the row it waited for), so concurrent workers can never spend past the limit, and
no transaction spans two round trips. The first request of a connection creates its row.

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
from timelogging.services.worker_sql import budget_take


class BudgetExhausted(RetryableError):
    kind = ErrorClass.THROTTLED


def requests_per_minute(connection: PSAConnection) -> int:
    per_hour = (
        connection.requests_per_hour or backend_class(connection.vendor).default_requests_per_hour
    )
    return max(1, math.ceil(per_hour / 60))


def budget_window(now: dt.datetime) -> dt.datetime:
    """The minute whose slice of the budget a request made at ``now`` counts in."""
    return now.replace(second=0, microsecond=0)


def budget_spend(*, connection: PSAConnection, now: dt.datetime | None = None) -> None:
    """Count one request against the connection's budget, or raise ``BudgetExhausted``."""
    now = now or timezone.now()
    window = budget_window(now)
    limit = requests_per_minute(connection)
    for _ in range(2):  # a second time only after creating the connection's row
        if budget_take(connection_id=connection.pk, window=window, limit=limit):
            return
        if RequestBudget.objects.filter(connection_id=connection.pk).exists():
            break
        try:
            with transaction.atomic():
                RequestBudget.objects.create(
                    connection_id=connection.pk, window_start=window, used=0
                )
        except IntegrityError:  # another worker created it first
            pass
    wait = (window + dt.timedelta(minutes=1) - now).total_seconds()
    raise BudgetExhausted(
        f"piadesk's request budget for this connection ({limit} per minute) is used "
        "up; the entry waits for the next minute.",
        retry_after=max(1.0, wait),
    )
