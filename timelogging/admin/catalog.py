"""The tenant's catalogue: tags, clients and automations."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from timelogging.admin.base import TenantScopedModelAdmin
from timelogging.admin.filters import selected_tenant_id
from timelogging.admin.site import admin_site
from timelogging.forms import (
    AddTagForm,
    AutomationForm,
    AutomationTimeForm,
    ClientForm,
    TagForm,
)
from timelogging.models import Automation, Client, Tag, Tenant


@admin.register(Tag, site=admin_site)
class TagAdmin(TenantScopedModelAdmin):
    form = TagForm
    fields = ("tenant", "name")
    list_display = ("name", "tenant", "client_count")
    list_select_related = ("tenant",)
    list_filter = ("tenant",)
    search_fields = ("name", "tenant__name")
    autocomplete_fields = ("tenant",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).annotate(n_clients=Count("clients"))

    @admin.display(description="Clients", ordering="n_clients")
    def client_count(self, obj: Tag) -> int:
        return obj.n_clients  # type: ignore[attr-defined]  # annotated by get_queryset


class TagOfTenantFilter(admin.SimpleListFilter):
    """Tags are per tenant (two tenants may both have "Ad-hoc"): offered once a tenant is
    chosen, which also keeps the list short with hundreds of tenants."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Staff: always their own tenant's tags, whatever tenant the URL names.
        tenant_id = selected_tenant_id(request)
        if tenant_id is None:
            return []
        return [(str(pk), name) for pk, name in _tenant_tag_names(tenant_id)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Client]) -> QuerySet[Client]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(tags__id=int(value))
        return queryset


def _tenant_tag_names(tenant_id: int) -> list[tuple[int, str]]:
    return list(Tag.objects.filter(tenant_id=tenant_id).values_list("pk", "name"))


@admin.register(Client, site=admin_site)
class ClientAdmin(TenantScopedModelAdmin):
    form = ClientForm
    fields = ("tenant", "key", "name", "tags")
    fixed_on_change = ("key",)
    filter_horizontal = ("tags",)
    list_display = ("key", "name", "tag_list", "tenant")
    list_select_related = ("tenant",)
    list_filter = ("tenant", TagOfTenantFilter)
    search_fields = ("key", "name")
    autocomplete_fields = ("tenant",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name")))
        )

    actions = ["add_tag"]

    @admin.action(description="Add tag…", permissions=["change"])
    def add_tag(self, request: HttpRequest, queryset: QuerySet[Client]) -> TemplateResponse | None:
        tenant_ids = set(queryset.order_by().values_list("tenant_id", flat=True).distinct()[:2])
        if len(tenant_ids) != 1:
            self.message_user(
                request,
                "Select clients of one tenant: each tenant has its own tags.",
                messages.ERROR,
            )
            return None
        tenant = Tenant.objects.get(pk=tenant_ids.pop())
        form = AddTagForm(request.POST if "apply" in request.POST else None, tenant=tenant)
        if form.is_valid():
            tag = form.cleaned_data["tag"]
            clients = list(queryset.exclude(tags=tag))
            tag.clients.add(*clients)
            for client in clients:  # in each client's history, as if edited on its page
                self.log_change(request, client, [{"changed": {"fields": ["Tags"]}}])
            self.message_user(
                request,
                f"Tag “{tag}” added to {len(clients)} client{'s' if len(clients) != 1 else ''}.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Add tag to clients",
            "tenant": tenant,
            "clients": list(queryset),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/timelogging/client/add_tag.html", context)

    @admin.display(description="Tags")
    def tag_list(self, obj: Client) -> str:
        return ", ".join(tag.name for tag in obj.tags.all())


@admin.register(Automation, site=admin_site)
class AutomationAdmin(TenantScopedModelAdmin):
    """Automations, with their time-per-automation rule (also on the tenant's settings)."""

    form = AutomationForm
    fields = ("tenant", "key", "name", "log_time", "minutes")
    fixed_on_change = ("key",)
    list_display = ("key", "name", "tenant", "log_time", "minutes")
    list_display_links = ("key",)
    list_editable = ("log_time", "minutes")
    list_select_related = ("tenant",)
    list_filter = ("tenant", "log_time")
    search_fields = ("key", "name")
    autocomplete_fields = ("tenant",)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs.setdefault("form", AutomationTimeForm)
        return super().get_changelist_form(request, **kwargs)
