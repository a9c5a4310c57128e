"""The automation service's API keys, one set per tenant."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from timelogging.admin.base import TenantScopedModelAdmin
from timelogging.admin.site import admin_site
from timelogging.models import TenantAPIKey


@admin.register(TenantAPIKey, site=admin_site)
class TenantAPIKeyAdmin(TenantScopedModelAdmin):
    """Keys are stored hashed: the full key is shown once, on the page that answers its
    creation (``response_add``), and nothing can show it afterwards. Not in a message, as the
    library does: messages travel in a signed but readable cookie. A key is named by its
    public prefix (its id, ``TenantAPIKeyManager``) in URLs and histories."""

    fields = ("tenant", "name", "prefix", "read_only", "expiry_date", "revoked")
    list_display = (
        "tenant",
        "name",
        "prefix",
        "read_only",
        "created",
        "expiry_date",
        "_has_expired",
        "revoked",
    )
    list_select_related = ("tenant",)
    list_filter = ("revoked", "read_only", "tenant")
    search_fields = ("name", "prefix", "tenant__name")
    autocomplete_fields = ("tenant",)
    actions = ["revoke_keys"]

    def save_model(
        self, request: HttpRequest, obj: Any, form: Any = None, change: bool = False
    ) -> None:
        if change:
            obj.save()
            return
        key = self.model.objects.assign_key(obj)
        obj.save()
        request._piadesk_new_api_key = key  # type: ignore[attr-defined]  # for response_add

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        key = getattr(request, "_piadesk_new_api_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API key created",
            "api_key": obj,
            "key": key,
        }
        response = TemplateResponse(request, "admin/timelogging/tenantapikey/created.html", context)
        response["Cache-Control"] = "no-store"  # never kept by a browser or proxy cache
        return response

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The prefix is made on creation; a revoked key stays as it was revoked.
        fields = (*super().get_readonly_fields(request, obj), "prefix")
        if obj is not None and obj.revoked:
            fields += ("name", "read_only", "expiry_date", "revoked")
        return fields

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[TenantAPIKey]) -> None:
        keys = list(queryset.filter(revoked=False))
        for key in keys:
            key.revoked = True
            key.save(update_fields=["revoked"])
            # Recorded in the object's history, like a change made on its page.
            self.log_change(request, key, [{"changed": {"fields": ["Revoked"]}}])
        self.message_user(
            request,
            f"Revoked {len(keys)} API key{'s' if len(keys) != 1 else ''}: the automation "
            "service can no longer use them.",
            messages.SUCCESS,
        )
