"""The two kinds of admin page, and the tenant isolation every page goes through.

Tenant isolation: which tenants a user may see is ``selectors.visible_tenant_ids(user)`` (a
superuser every tenant; MSP staff and auditors the tenant of their ``StaffProfile``; anyone
else none), the same rule the reports and the API follow. ``TenantScopedModelAdmin`` applies
it to everything a page shows or accepts: its queryset (hence changelists, change, history and
delete views, ``get_object`` in custom views, autocomplete and the CSV export), foreign-key and
many-to-many choices, the tenant list filter, the tenant chosen on add. Rows that belong to no
tenant (users, groups, the task queue, login lockouts) are shown by other apps' admins made
superuser-only (``superuser_only``, see ``site.py``). Every registered admin is one or the other
(tests/timelogging/test_isolation.py walks the site's registry).

``HistoryModelAdmin`` is the read-only variant for the history tables (millions of rows):
estimated counts, index-friendly sorting and exact search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from timelogging.admin.display import HISTORY_CSS, one_line
from timelogging.admin.filters import ScopedTenantListFilter, selected_tenant_id
from timelogging.admin.paging import HistoryPaginator
from timelogging.models import Tenant
from timelogging.selectors import scope_to_tenants, viewing_time_zone, visible_tenant_ids

_AFTER_SAVE = "_piadesk_after_save"


def tenant_path(model: type[Model]) -> str | None:
    """How ``model``'s rows name their tenant: "pk" for the tenant itself, "tenant" for rows
    that belong to one, None for rows of no tenant."""
    if issubclass(model, Tenant):
        return "pk"
    if any(f.name == "tenant" and f.is_relation for f in model._meta.get_fields()):
        return "tenant"
    return None


class TenantScopedModelAdmin(admin.ModelAdmin):
    """The page of rows that belong to a tenant: non-superusers see, choose and change only
    their own tenant's (module docstring), and a row's tenant is chosen on creation, then
    fixed (moving a row to another tenant would hand its history to it).

    ``tenant_lookup``: how the rows name their tenant ("pk" on the tenants' own page).
    ``fixed_on_change``: more fields read-only once the row exists.
    """

    tenant_lookup: str = "tenant"
    fixed_on_change: tuple[str, ...] = ()

    # -- after the save has committed ----------------------------------------------------------
    def after_save(self, request: HttpRequest, work: Callable[[], None]) -> None:
        """Run ``work`` once the page's save has committed: what asks a PSA (a user check)
        must not hold the admin's transaction open while the PSA answers."""
        pending = request.__dict__.setdefault(_AFTER_SAVE, [])
        pending.append(work)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        if object_id is not None and request.user.is_superuser:
            # Superusers see every tenant: the page shows times in its row's tenant's zone
            # (staff and auditors are in their own tenant's already, see site.py).
            timezone.activate(self._zone_of(request, object_id))
        # Django's changeform_view validates and saves in one transaction: when it returns,
        # the save has committed (or raised, and nothing runs).
        response = super().changeform_view(request, object_id, form_url, extra_context)
        for work in request.__dict__.pop(_AFTER_SAVE, []):
            work()
        return response

    def _zone_of(self, request: HttpRequest, object_id: str) -> str:
        rows = self.get_queryset(request).filter(pk=unquote(object_id)).order_by()
        tenant_ids = list(rows.values_list(self.tenant_lookup, flat=True)[:1])
        return viewing_time_zone(request.user, tenant_id=tenant_ids[0] if tenant_ids else None)

    # -- what is shown -------------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        return scope_to_tenants(queryset, visible_tenant_ids(request.user), self.tenant_lookup)

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        # A list filtered by an id past 64 bits (``?tenant=99999999999999999999``) is answered
        # like any other bad filter (Django's "?e=1" redirect), not with SQLite's
        # ``OverflowError`` (a 500); PostgreSQL compares such a number without complaint.
        try:
            return super().get_changelist_instance(request)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_list_filter(self, request: HttpRequest) -> Any:
        # Django's filter on the tenant lists every tenant: this one lists the visible ones.
        return [
            ("tenant", ScopedTenantListFilter) if item == "tenant" else item
            for item in super().get_list_filter(request)
        ]

    # -- what may be chosen --------------------------------------------------------------------
    def get_field_queryset(self, db: Any, db_field: Any, request: HttpRequest) -> Any:
        # The choices of every foreign key and many-to-many field (the form validates against
        # them, so another tenant's id POSTed by hand is "not one of the available choices").
        queryset = super().get_field_queryset(db, db_field, request)
        ids = visible_tenant_ids(request.user)
        related = db_field.remote_field.model
        path = tenant_path(related)
        if ids is None or path is None:
            return queryset
        if queryset is None:
            queryset = related._default_manager.using(db).all()
        return scope_to_tenants(queryset, ids, path)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        # No "+" beside a choice of tenant rows (tags, connections): its pop-up would offer
        # every tenant and could not preselect the right one. Tags are created on the tenant's
        # page or the Tags page.
        related = getattr(db_field, "related_model", None)
        wrapped = getattr(field, "widget", None) if field is not None else None
        if related is not None and tenant_path(related) == "tenant" and wrapped is not None:
            if hasattr(wrapped, "can_add_related"):
                wrapped.can_add_related = False
        return field

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        ids = visible_tenant_ids(request.user)
        if self.tenant_lookup == "tenant" and ids is not None and len(ids) == 1:
            # Staff add to their own tenant (a model choice's initial value may be its pk).
            initial.setdefault("tenant", ids[0])  # type: ignore[arg-type]  # see above
        return initial

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None:
            scope = ("tenant",) if self.tenant_lookup == "tenant" else ()
            fields += tuple(f for f in (*scope, *self.fixed_on_change) if f not in fields)
        return fields

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # Without a tenant there is nothing to add to (every tenant choice would be empty).
        return super().has_add_permission(request, *args) and (
            visible_tenant_ids(request.user) != []
        )


class HistoryChangeList(ChangeList):
    """The page's rows read only the columns shown (``HistoryModelAdmin.list_only``): no
    summaries, notes or recorded exchanges for a list of 100. Only the page: the export reads
    ``queryset``, which keeps every column."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        fields = getattr(self.model_admin, "list_only", ())
        if fields:
            # The list's joins only (get_queryset may join more for the detail page).
            joins = self.model_admin.list_select_related
            if isinstance(joins, list | tuple):
                self.result_list = self.result_list.select_related(None).select_related(*joins)
            self.result_list = self.result_list.only(*fields)


class HistoryModelAdmin(TenantScopedModelAdmin):
    """A history table (runs, entries, configuration changes): viewable by staff and auditors
    (view permission), never added, edited or deleted through the admin.

    Built for millions of rows: no full count and no facet counts, counts estimated past
    ``HistoryPaginator.exact_up_to``; sorting by any column once a tenant is chosen, across
    all tenants only by ``indexed_sort_fields`` (so that a click on a header never sorts
    millions of rows); search by identifiers pasted whole (``search_fields`` without lookups):
    exact, case-sensitive matches that plain indexes serve, instead of Django's ``icontains``
    scans.

    Fits a 1366 px screen: names rather than ids, statuses as badges and long text on one line
    (``display.py``); the tenant column only while rows of several tenants are listed
    (``tenant_column``); the rows joined once (``list_select_related``) and read with only the
    columns shown (``list_only``), so a page costs the same queries for 5 rows or 100."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = HistoryPaginator
    indexed_sort_fields: tuple[str, ...] = ()
    list_only: tuple[str, ...] = ()
    tenant_column = "tenant_name"

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(css={"all": [HISTORY_CSS]})

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return HistoryChangeList

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = super().get_list_display(request)
        if selected_tenant_id(request) is not None:  # one tenant's rows: no column for it
            shown = tuple(name for name in shown if name != self.tenant_column)
        return shown

    @admin.display(description="Tenant")
    def tenant_name(self, obj: Any) -> Any:
        return one_line(obj.tenant.name if obj.tenant_id else "")

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_sortable_by(self, request: HttpRequest) -> Any:
        if selected_tenant_id(request) is not None:
            return super().get_sortable_by(request)
        return self.indexed_sort_fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term or not self.search_fields:
            return queryset, False
        return queryset.filter(pk__in=united(self.exact_matches(queryset.model, term))), False

    def exact_matches(self, model: type[Model], term: str) -> list[QuerySet[Any]]:
        # One index look-up per field, united. A plain OR across a join (run.ticket_id = t OR
        # entry.psa_entry_id = t) is one condition on the joined rows that no index serves:
        # PostgreSQL would walk the whole history testing it row by row.
        return [
            model._default_manager.filter(**{field: term}).order_by().values("pk")
            for field in self.search_fields
        ]


def united(matches: list[QuerySet[Any]]) -> QuerySet[Any]:
    """The union of ``values("pk")`` querysets (one SQL UNION, each side on its own index)."""
    return matches[0].union(*matches[1:]) if len(matches) > 1 else matches[0]


class ReadOnlyInline(admin.TabularInline):
    """Rows of a history shown under their parent, never added, edited or deleted."""

    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SuperuserOnlyAdminMixin:
    """Put in front of another app's admin class (``superuser_only``): pages of rows that
    belong to no tenant (users and groups, the task queue, whose task arguments are entry ids
    of every tenant, login lockouts) for superusers only, whatever permissions a staff member
    was given. The rest of the page is exactly as the app made it."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser and super().has_module_permission(request)  # type: ignore[misc]  # a mixin: the admin class it is put in front of has it

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_view_permission(request, obj)  # type: ignore[misc]  # as above

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return request.user.is_superuser and super().has_add_permission(request, *args)  # type: ignore[misc]  # as above

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)  # type: ignore[misc]  # as above

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)  # type: ignore[misc]  # as above


def superuser_only(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """``admin_class`` for superusers only (``SuperuserOnlyAdminMixin`` in front of it)."""
    return type(admin_class.__name__, (SuperuserOnlyAdminMixin, admin_class), {})


def admin_link(obj: Model | None, text: Any = None) -> str:
    """A link to ``obj``'s admin change page (or "-" when there is none)."""
    if obj is None:
        return "-"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)
