"""Notification webhook (Teams / Slack) per tenant, and the notices sent to staff.

The webhook URL is write-only, like PSA secrets: encrypted on save, never shown again (leave
it blank to keep it). Notices are read-only: what piadesk told the tenant's staff, and when.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from timelogging.admin.base import TenantScopedModelAdmin
from timelogging.admin.site import admin_site
from timelogging.forms import ScopedModelForm
from timelogging.models import NotificationWebhook, StaffNotice
from timelogging.services.notices import webhook_save


class NotificationWebhookForm(ScopedModelForm):
    url = forms.URLField(
        label="Webhook URL",
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The channel's incoming-webhook address. Kept encrypted and never shown "
        "again: leave it blank to keep the stored one.",
        assume_scheme="https",
    )

    class Meta:
        model = NotificationWebhook
        fields = ["tenant", "style", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data.get("url", "")
        if url and not url.startswith("https://"):
            raise ValidationError("Use the https:// address Teams or Slack gave you.")
        if not url and not (self.instance.pk and self.instance.url_encrypted):
            raise ValidationError("Enter the webhook URL.")
        return url


@admin.register(NotificationWebhook, site=admin_site)
class NotificationWebhookAdmin(TenantScopedModelAdmin):
    form = NotificationWebhookForm
    list_display = ("tenant", "style", "is_active", "updated_at")
    fields = ("tenant", "style", "url", "is_active")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = webhook_save(
            tenant=form.cleaned_data.get("tenant") or obj.tenant,
            style=form.cleaned_data["style"],
            url=form.cleaned_data.get("url", ""),
            is_active=form.cleaned_data["is_active"],
        )
        obj.pk = saved.pk


@admin.register(StaffNotice, site=admin_site)
class StaffNoticeAdmin(TenantScopedModelAdmin):
    list_display = ("created_at", "tenant", "kind", "subject", "emailed_to", "webhook_at")
    list_filter = ("kind",)
    readonly_fields = (
        "tenant",
        "kind",
        "subject",
        "body",
        "link",
        "created_at",
        "emailed_at",
        "emailed_to",
        "webhook_at",
        "webhook_error",
    )
    exclude = ("key",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
