"""Sidebar filters for the history lists that stay cheap at millions of rows.

Django's defaults do not: a filter on a plain CharField (``AllValuesFieldListFilter``) runs
``SELECT DISTINCT`` over the whole table to list its choices, a related filter lists every
client of every tenant (hundreds of thousands), and ``date_hierarchy`` runs ``SELECT DISTINCT``
on dates. These filters take their choices from code (error classes), from the tenant chosen
in the tenant filter (its clients, automations, PSA users: small tables), or from the user
(dates, a PSA user id), and filter with conditions the indexes serve.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from psa.base import ErrorClass
from timelogging.models import Automation, Client, PSAUserMapping, Tenant
from timelogging.selectors import scope_to_tenants, visible_tenant_ids

TENANT_PARAM = "tenant__id__exact"  # as Django's related filter on "tenant" names it


def selected_tenant_id(request: HttpRequest) -> int | None:
    """The tenant whose catalogue the filters offer: for staff and auditors, always their own
    (whatever the URL says); for superusers, the one chosen in the tenant filter, if any."""
    visible = visible_tenant_ids(request.user)
    if visible is not None:
        return visible[0] if len(visible) == 1 else None
    raw = request.GET.get(TENANT_PARAM, "")
    return int(raw) if raw.isdigit() else None


def _hidden_params(changelist: ChangeList, own: Iterable[str | None]) -> list[tuple[str, str]]:
    """The list's other parameters (filters, search, ordering), for a filter's GET form: a
    form submits only its own fields, and choosing a date must not drop the tenant."""
    return [
        (key, value)
        for key, values in changelist.filter_params.items()
        if key not in own
        for value in values
    ]


class ScopedTenantListFilter(admin.RelatedFieldListFilter):
    """Django's filter on the ``tenant`` foreign key, listing only the tenants the user may
    see (Django's lists every tenant)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        ids = visible_tenant_ids(request.user)
        if ids is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"pk__in": ids}
        )


class ErrorClassFilter(admin.SimpleListFilter):
    """The error classes are a closed set (``psa.base.ErrorClass``, one source for values and
    labels): listed from code, not with ``SELECT DISTINCT`` over a million entries."""

    title = "error class"
    parameter_name = "error_class"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, label) for value, label in ErrorClass.choices if value != ErrorClass.ERROR]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(error_class=value) if value else queryset


class TenantChoiceFilter(admin.SimpleListFilter):
    """A filter on a per-tenant catalogue (clients, automations), offered as a drop-down once
    a tenant is chosen: a tenant has up to thousands of clients, all tenants together hundreds
    of thousands, far too many to list. A value set without a tenant (a bookmarked link) still
    filters and shows what it is."""

    template = "admin/timelogging/filters/select.html"
    field_path: ClassVar[str]
    catalogue: ClassVar[type[Model]]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenant_id = selected_tenant_id(request)
        value = self.value()
        rows = scope_to_tenants(
            self.catalogue._default_manager.order_by("name", "key"),
            visible_tenant_ids(request.user),
        )
        if tenant_id is not None:
            rows = rows.filter(tenant_id=tenant_id)
        elif value and value.isdigit():
            rows = rows.filter(pk=int(value))
        else:
            return []
        return [(str(pk), name or key) for pk, name, key in rows.values_list("pk", "name", "key")]

    def has_output(self) -> bool:
        return True  # without a tenant it says to choose one first

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"{self.parameter_name} must be a number")
        return queryset.filter(**{self.field_path: int(value)})

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:  # type: ignore[override]  # our templates take other keys than Django's
        yield {
            "hidden": _hidden_params(changelist, [self.parameter_name]),
            "name": self.parameter_name,
            "options": self.lookup_choices,
            "value": self.value() or "",
            "needs_tenant": selected_tenant_id(self.request) is None and not self.value(),
            "clear_url": changelist.get_query_string(remove=[str(self.parameter_name)]),
        }


class TenantFilter(admin.SimpleListFilter):
    """The tenant, as a drop-down: hundreds of tenants as a list of links would push every
    other filter off the screen. Same parameter as Django's related filter, which the client,
    automation and PSA user filters (and bookmarks) read."""

    title = "tenant"
    parameter_name = TENANT_PARAM
    template = "admin/timelogging/filters/select.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenants = scope_to_tenants(Tenant.objects.all(), visible_tenant_ids(request.user), "pk")
        return [(str(pk), name) for pk, name in tenants.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"{TENANT_PARAM} must be a number")
        return queryset.filter(tenant_id=int(value))

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:  # type: ignore[override]  # our templates take other keys than Django's
        # Choosing another tenant drops the client and automation of the previous one.
        own = [self.parameter_name, "client", "automation"]
        yield {
            "hidden": _hidden_params(changelist, own),
            "name": self.parameter_name,
            "options": self.lookup_choices,
            "value": self.value() or "",
            "needs_tenant": False,
            "clear_url": changelist.get_query_string(remove=own),
        }


class ClientFilter(TenantChoiceFilter):
    """Runs' and entries' client (an entry carries its run's: no join)."""

    title = "client"
    parameter_name = "client"
    field_path = "client_id"
    catalogue = Client


class AutomationFilter(TenantChoiceFilter):
    """Runs' and entries' automation (an entry carries its run's: no join)."""

    title = "automation"
    parameter_name = "automation"
    field_path = "automation_id"
    catalogue = Automation


class PSAUserFilter(admin.SimpleListFilter):
    """The PSA user an entry was logged under, by the PSA's identifier (member identifier,
    resource or agent id), exact. With a tenant chosen, its known users are suggested."""

    title = "PSA user"
    parameter_name = "psa_user"
    template = "admin/timelogging/filters/text.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenant_id = selected_tenant_id(request)
        if tenant_id is None:
            return []
        users = (
            PSAUserMapping.objects.filter(tenant_id=tenant_id)
            .order_by("psa_user_name", "psa_user_ref")
            .values_list("psa_user_ref", "psa_user_name")
            .distinct()
        )
        return [(ref, f"{name} ({ref})" if name else ref) for ref, name in users]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        return queryset.filter(psa_user_ref=value) if value else queryset

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:  # type: ignore[override]  # our templates take other keys than Django's
        yield {
            "hidden": _hidden_params(changelist, [self.parameter_name]),
            "name": self.parameter_name,
            "value": self.value() or "",
            "suggestions": self.lookup_choices,
            "placeholder": "e.g. jdoe or 29682885",
            "clear_url": changelist.get_query_string(remove=[str(self.parameter_name)]),
        }


class DateRangeFilter(admin.ListFilter):
    """From/to dates (inclusive, in the site's time zone) on one date-time field, plus a few
    quick ranges. Replaces ``date_hierarchy``, which lists the dates present with ``SELECT
    DISTINCT`` over the filtered table; the range becomes ``field >= from AND field < to + 1
    day``, which the date indexes serve (a ``__date`` lookup would not)."""

    template = "admin/timelogging/filters/date_range.html"
    field_name: ClassVar[str]
    prefix: ClassVar[str]

    def __init__(
        self, request: HttpRequest, params: dict[str, list[str]], model: Any, model_admin: Any
    ) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.expected_parameters():
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1].strip()
        self.start = self._date(self.param_from)
        self.end = self._date(self.param_to)

    @property
    def param_from(self) -> str:
        return f"{self.prefix}_from"

    @property
    def param_to(self) -> str:
        return f"{self.prefix}_to"

    def _date(self, name: str) -> dt.date | None:
        raw = str(self.used_parameters.get(name) or "")
        if not raw:
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise IncorrectLookupParameters(f"{name}: {raw!r} is not a date (YYYY-MM-DD)") from None

    def expected_parameters(self) -> list[str | None]:
        return [*self._own_parameters()]

    def _own_parameters(self) -> list[str]:
        return [self.param_from, self.param_to]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.start is not None:
            queryset = queryset.filter(**{f"{self.field_name}__gte": _midnight(self.start)})
        if self.end is not None:
            end = _midnight(self.end + dt.timedelta(days=1))
            queryset = queryset.filter(**{f"{self.field_name}__lt": end})
        return queryset

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:
        today = timezone.localdate()
        own = self._own_parameters()
        quick = [
            ("Any date", None, None),
            ("Today", today, today),
            ("Past 7 days", today - dt.timedelta(days=6), today),
            ("This month", today.replace(day=1), today),
            ("Past 12 weeks", today - dt.timedelta(weeks=12) + dt.timedelta(days=1), today),
        ]
        links = []
        for label, start, end in quick:
            params = (
                {self.param_from: start.isoformat(), self.param_to: end.isoformat()}
                if start and end
                else {}
            )
            links.append(
                {
                    "display": label,
                    "selected": (start, end) == (self.start, self.end),
                    "query_string": changelist.get_query_string(params, remove=own),
                }
            )
        yield {
            "hidden": _hidden_params(changelist, own),
            "links": links,
            "from_name": self.param_from,
            "to_name": self.param_to,
            "from_value": self.start.isoformat() if self.start else "",
            "to_value": self.end.isoformat() if self.end else "",
        }


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class ReceivedFilter(DateRangeFilter):
    title = "date received"
    field_name = "received_at"
    prefix = "received"


class CreatedFilter(DateRangeFilter):
    title = "date created"
    field_name = "created_at"
    prefix = "created"
