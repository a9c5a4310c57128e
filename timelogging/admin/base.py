"""Pieces shared by the admin classes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html


class ReadOnlyAdminMixin:
    """History: viewable by staff and auditors (view permission), never added, edited or
    deleted through the admin. Large tables: no full count, no facet counts."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ExactSearchMixin:
    """Search by identifiers pasted whole (run id, ticket number, PSA entry id): exact,
    case-sensitive matches, which plain indexes serve, instead of Django's ``icontains`` or
    ``iexact`` (UPPER(...) = UPPER(...)) scans over millions of rows. ``search_fields``
    lists the fields, without lookups."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # One index look-up per field, united. A plain OR across a join (run.ticket_id = t OR
        # entry.psa_entry_id = t) is one condition on the joined rows that no index serves:
        # PostgreSQL would walk the whole history testing it row by row.
        model = queryset.model
        matches = [
            model._default_manager.filter(**{field: term}).order_by().values("pk")
            for field in self.search_fields  # type: ignore[attr-defined]
        ]
        united = matches[0].union(*matches[1:]) if len(matches) > 1 else matches[0]
        return queryset.filter(pk__in=united), False


class TenantScopedAdminMixin:
    """Rows that belong to a tenant: the tenant is chosen on creation, then fixed (moving a
    row to another tenant would hand its history to that tenant)."""

    scope_fields: tuple[str, ...] = ("tenant",)
    fixed_on_change: tuple[str, ...] = ()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if obj is not None:
            fields += tuple(
                f for f in (*self.scope_fields, *self.fixed_on_change) if f not in fields
            )
        return fields


class NoAddRelatedTagsMixin:
    """Tags are created on the tenant's settings page or the Tags page: the "+" pop-up beside
    a tag picker would offer every tenant and could not preselect the right one."""

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]
        if field is not None and db_field.name in ("apply_tags", "tags"):
            field.widget.can_add_related = False
        return field


def admin_link(obj: Model | None, text: Any = None) -> str:
    """A link to ``obj``'s admin change page (or "-" when there is none)."""
    if obj is None:
        return "-"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)
