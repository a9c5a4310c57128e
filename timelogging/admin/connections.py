"""PSA connections (credentials) and the e-mail → PSA user mappings."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from psa.registry import BACKENDS, backend_class, vendor_choices
from timelogging.admin.base import TenantScopedAdminMixin
from timelogging.forms import PSAConnectionForm, PSAUserMappingForm, default_vendor
from timelogging.models import PSAConnection, PSAUserMapping
from timelogging.services.connections import connection_save
from timelogging.services.delivery import connection_pause, connection_resume


class VendorFilter(admin.SimpleListFilter):
    title = "vendor"
    parameter_name = "vendor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return vendor_choices()

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(vendor=self.value()) if self.value() else queryset


@admin.register(PSAConnection)
class PSAConnectionAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """The form's fields come from the vendor backend's ``config_fields``.

    The vendor is chosen on the add page (``?vendor=``; the select reloads the page with the
    chosen vendor's fields) and fixed afterwards: entries posted through a connection keep
    pointing at it, so another PSA is another connection.
    """

    form = PSAConnectionForm
    fixed_on_change = ("vendor",)
    list_display = ("tenant", "vendor_label", "name", "is_active", "site", "state")
    list_select_related = ("tenant",)
    list_filter = (VendorFilter, "is_active")
    search_fields = ("name", "tenant__name")
    autocomplete_fields = ("tenant",)
    actions = ["pause_connections", "resume_connections"]
    readonly_fields = ("state",)

    class Media:
        js = ("timelogging/psa_connection.js",)

    def get_queryset(self, request: HttpRequest) -> Any:
        # str() names the tenant: the autocomplete of the user mappings lists connections.
        return super().get_queryset(request).select_related("tenant")

    def _vendor(self, request: HttpRequest, obj: PSAConnection | None) -> str:
        if obj is not None:
            return obj.vendor
        chosen = request.POST.get("vendor") or request.GET.get("vendor")
        return chosen if chosen in BACKENDS else default_vendor()

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = PSAConnectionForm.for_vendor(self._vendor(request, obj))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        backend = backend_class(self._vendor(request, obj))
        return [
            (None, {"fields": ["tenant", "vendor", "name", "is_active", "state"]}),
            (
                f"{backend.label} settings",
                {
                    "fields": [f.name for f in backend.config_fields],
                    "description": "Secret values are stored encrypted and never shown again.",
                },
            ),
            (
                "Limits",
                {
                    "fields": ["requests_per_hour", "max_concurrency"],
                    "description": f"Shared by every worker. {backend.label}'s default budget "
                    f"is {backend.default_requests_per_hour} requests per hour.",
                },
            ),
        ]

    @admin.display(description="State")
    def state(self, obj: PSAConnection) -> str:
        if obj.pk is None:
            return "-"
        if obj.paused_at is not None:
            return f"Paused since {obj.paused_at:%Y-%m-%d %H:%M} UTC: {obj.pause_reason}"
        return "Healthy" if obj.is_active else "Inactive"

    @admin.action(description="Pause selected connections (hold their entries)")
    def pause_connections(self, request: HttpRequest, queryset: Any) -> None:
        held = sum(
            connection_pause(connection_id=pk, reason=f"Paused by {request.user}.")
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Paused; {held} waiting entries held.", messages.SUCCESS)

    @admin.action(description="Resume selected connections (post their held entries)")
    def resume_connections(self, request: HttpRequest, queryset: Any) -> None:
        released = sum(
            connection_resume(connection_id=pk)
            for pk in queryset.filter(paused_at__isnull=False).values_list("pk", flat=True)
        )
        self.message_user(
            request, f"Resumed; {released} held entries queued again.", messages.SUCCESS
        )

    @admin.display(description="Vendor", ordering="vendor")
    def vendor_label(self, obj: PSAConnection) -> str:
        return obj.vendor_label

    @admin.display(description="Site")
    def site(self, obj: PSAConnection) -> str | None:
        return obj.settings.get("site_url") or None

    def save_model(self, request: HttpRequest, obj: PSAConnection, form: Any, change: bool) -> None:
        retired = []
        if obj.is_active:
            retired = list(
                PSAConnection.objects.filter(tenant_id=obj.tenant_id, is_active=True).exclude(
                    pk=obj.pk
                )
            )
        # The form ran the same validation; connection_save merges, encrypts and saves obj.
        connection_save(
            connection=obj,
            tenant=obj.tenant,
            vendor=form.vendor_name,
            settings=form.config_settings(),
            secrets=form.config_secrets(),
            is_active=obj.is_active,
            name=obj.name,
        )
        for other in retired:
            self.message_user(
                request,
                f"“{other}” was deactivated: a tenant has one active PSA connection.",
                messages.WARNING,
            )


@admin.register(PSAUserMapping)
class PSAUserMappingAdmin(admin.ModelAdmin):
    """Who an e-mail is in the PSA. Rows saved here are staff overrides: the automatic
    resolution leaves them alone."""

    form = PSAUserMappingForm
    fields = ("connection", "tenant", "email", "psa_user_ref", "psa_user_name", "source")
    list_display = ("email", "psa_user_ref", "psa_user_name", "source", "connection", "tenant")
    list_select_related = ("tenant", "connection", "connection__tenant")
    list_filter = ("source", "tenant")
    search_fields = ("=email", "psa_user_ref", "psa_user_name")
    autocomplete_fields = ("connection",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("connection",) if obj is not None else ()
        return (*fixed, "tenant", "source")

    def save_model(
        self, request: HttpRequest, obj: PSAUserMapping, form: Any, change: bool
    ) -> None:
        obj.tenant_id = obj.connection.tenant_id
        obj.source = PSAUserMapping.Source.MANUAL
        super().save_model(request, obj, form, change)
