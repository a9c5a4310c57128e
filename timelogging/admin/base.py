"""Pieces shared by the admin classes, and the tenant isolation every admin page goes through.

Tenant isolation: a superuser sees every tenant; anyone else sees exactly the tenant of their
``StaffProfile`` (MSP staff and auditors), or nothing without one. ``visible_tenant_ids`` says
which, once per request; ``TenantIsolationMixin`` applies it to everything a ModelAdmin shows
or accepts (its queryset, hence changelists, change/delete/history views, ``get_object`` in
custom views, autocomplete and the CSV export; foreign-key and many-to-many choices; the
tenant list filter; the tenant chosen on add). Admins of rows that belong to no tenant (users,
groups, the task queue) are superuser-only (``SuperuserOnlyAdminMixin``). Every registered
admin is one or the other (tests/timelogging/test_isolation.py walks ``admin.site._registry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from timelogging.models import StaffProfile, Tenant

_CACHE_ATTR = "_piadesk_visible_tenant_ids"


if TYPE_CHECKING:
    # What the mixins here and in the other admin modules are mixed into, for the type
    # checker only: at run time they are plain classes in front of ModelAdmin in the MRO.
    ModelAdminMixinBase = admin.ModelAdmin[Any]
    InlineMixinBase = admin.options.BaseModelAdmin[Any]
else:
    ModelAdminMixinBase = object
    InlineMixinBase = object


def visible_tenant_ids(request: HttpRequest) -> list[int] | None:
    """The tenants ``request.user`` may see: ``None`` for all (superusers), else a list with
    their StaffProfile's tenant, or empty."""
    if not hasattr(request, _CACHE_ATTR):
        user = request.user
        ids: list[int] | None
        if user.is_active and user.is_superuser:
            ids = None
        elif not user.is_authenticated:
            ids = []
        else:
            ids = list(
                StaffProfile.objects.filter(user_id=user.pk).values_list("tenant_id", flat=True)
            )
        setattr(request, _CACHE_ATTR, ids)
    return getattr(request, _CACHE_ATTR)


def tenant_path(model: type[Model]) -> str | None:
    """How ``model``'s rows name their tenant: "pk" for the tenant itself, "tenant" for rows
    that belong to one, None for rows of no tenant."""
    if issubclass(model, Tenant):
        return "pk"
    if any(f.name == "tenant" and f.is_relation for f in model._meta.get_fields()):
        return "tenant"
    return None


def scope_to_tenants(
    queryset: QuerySet[Any], tenant_ids: list[int] | None, path: str | None = None
) -> QuerySet[Any]:
    """``queryset`` narrowed to ``tenant_ids`` (``None``: unchanged). Rows of no tenant are
    nobody's but the superusers'."""
    if tenant_ids is None:
        return queryset
    path = path or tenant_path(queryset.model)
    if path is None or not tenant_ids:
        return queryset.none()
    return queryset.filter(**{f"{path}__in": tenant_ids})


class ScopedTenantListFilter(admin.RelatedFieldListFilter):
    """Django's filter on the ``tenant`` foreign key, listing only the tenants the user may
    see (Django's lists every tenant)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        ids = visible_tenant_ids(request)
        if ids is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"pk__in": ids}
        )


class SafeLookupsMixin(ModelAdminMixinBase):
    """A list filtered by an id past 64 bits (``?tenant=99999999999999999999``) is answered
    like any other bad filter (Django's "?e=1" redirect), not with SQLite's ``OverflowError``
    (a 500); PostgreSQL compares such a number without complaint."""

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        try:
            return super().get_changelist_instance(request)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc


class TenantIsolationMixin(SafeLookupsMixin):
    """A ModelAdmin (or inline) of tenant rows: non-superusers see, choose and change only
    their own tenant's (module docstring). ``tenant_lookup`` is how the rows name their tenant
    (default: ``tenant``; the tenant admin uses ``pk``)."""

    tenant_lookup: str = "tenant"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        return scope_to_tenants(queryset, visible_tenant_ids(request), self.tenant_lookup)

    def get_field_queryset(self, db: Any, db_field: Any, request: HttpRequest) -> Any:
        # The choices of every foreign key and many-to-many field (the form validates against
        # them, so another tenant's id POSTed by hand is "not one of the available choices").
        queryset = super().get_field_queryset(db, db_field, request)
        ids = visible_tenant_ids(request)
        if ids is None:
            return queryset
        related = db_field.remote_field.model
        if tenant_path(related) is None:
            return queryset
        if queryset is None:
            queryset = related._default_manager.using(db).all()
        return scope_to_tenants(queryset, ids)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        ids = visible_tenant_ids(request)
        if self.tenant_lookup == "tenant" and ids is not None and len(ids) == 1:
            # Staff add to their own tenant (a model choice's initial value may be its pk).
            initial.setdefault("tenant", ids[0])  # type: ignore[arg-type]  # see above
        return initial

    def get_list_filter(self, request: HttpRequest) -> Any:
        return [
            ("tenant", ScopedTenantListFilter) if item == "tenant" else item
            for item in super().get_list_filter(request)
        ]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # Without a tenant there is nothing to add to (every tenant choice would be empty).
        return super().has_add_permission(request, *args) and (
            visible_tenant_ids(request) != []
        )


class SuperuserOnlyAdminMixin(SafeLookupsMixin):
    """Pages of rows that belong to no tenant (users and groups, the task queue, whose task
    arguments are entry ids of every tenant): superusers only, whatever permissions a staff
    member was given."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)


class ReadOnlyAdminMixin(InlineMixinBase):
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


class ExactSearchMixin(ModelAdminMixinBase):
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
            for field in self.search_fields
        ]
        united = matches[0].union(*matches[1:]) if len(matches) > 1 else matches[0]
        return queryset.filter(pk__in=united), False


class TenantScopedAdminMixin(TenantIsolationMixin):
    """Rows that belong to a tenant: isolated (``TenantIsolationMixin``); the tenant is chosen
    on creation, then fixed (moving a row to another tenant would hand its history to it)."""

    scope_fields: tuple[str, ...] = ("tenant",)
    fixed_on_change: tuple[str, ...] = ()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += tuple(
                f for f in (*self.scope_fields, *self.fixed_on_change) if f not in fields
            )
        return fields


class NoAddRelatedTagsMixin(ModelAdminMixinBase):
    """Tags are created on the tenant's settings page or the Tags page: the "+" pop-up beside
    a tag picker would offer every tenant and could not preselect the right one."""

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
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
