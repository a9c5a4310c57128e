"""The "Tenant Settings → Automated Time Logging" page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse

from psa.base import PSAUser
from psa.registry import vendor_choices
from timelogging.admin.base import TenantScopedModelAdmin
from timelogging.admin.psa_tools import (
    PICKER_JS,
    attach_picker,
    json_error,
    psa_user_check_after_save,
    psa_users_response,
)
from timelogging.admin.site import admin_site
from timelogging.admin.tenant_page import (
    TENANT_SETTINGS_CSS,
    TENANT_SETTINGS_JS,
    automation_rule_text,
    log_as_text,
    page_context,
    saved_message,
    scope_text,
    settings_changes,
)
from timelogging.forms import AutomationTimeForm, TagInlineFormSet, TenantSettingsForm
from timelogging.models import Automation, PSAConnection, Tag, Tenant

# Where construct_change_message leaves the save's changes for response_change.
_CHANGES = "_piadesk_tenant_settings_changes"
# Messages held while a save completes, told as one (TenantAdmin.message_user).
_HELD = "_piadesk_tenant_messages_held"


class AutomationInline(admin.TabularInline):
    """Step 4 of the article: time logging per automation. Automations are created when
    their first run arrives (or on the Automations page), so rows are only edited here."""

    model = Automation
    form = AutomationTimeForm
    fields = ("name", "key", "log_time", "minutes")
    readonly_fields = ("key", "time_rule")
    ordering = ("name", "key")
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = "automation"
    verbose_name_plural = "Time logging per automation"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if not self.has_change_permission(request, obj):
            # Read only (auditors): the rule in words, not a box and an empty cell.
            return ("name", "key", "time_rule")
        return super().get_fields(request, obj)

    @admin.display(description="Time logged per run")
    def time_rule(self, obj: Automation) -> str:
        return automation_rule_text(obj.log_time, obj.minutes).capitalize()


class TagInline(admin.TabularInline):
    """The tenant's tags, created and renamed here; chosen above once saved.

    Deleting is left to the Tags page, which lists the clients that carry the tag."""

    model = Tag
    formset = TagInlineFormSet
    fields = ("name", "client_count")
    readonly_fields = ("client_count",)
    ordering = ("name",)
    extra = 1
    can_delete = False
    verbose_name_plural = "Tags"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).annotate(n_clients=Count("clients"))

    @admin.display(description="Clients")
    def client_count(self, obj: Tag) -> int | str:
        return getattr(obj, "n_clients", "-")


@admin.register(Tenant, site=admin_site)
class TenantAdmin(TenantScopedModelAdmin):
    """The "Tenant Settings → Automated Time Logging" page, with its PSA connection panel,
    its preview (``tenant_page.py``; the preview and "Test connection" are site views) and
    "Saved. …" messages that say what changed and what the settings now do."""

    tenant_lookup = "pk"  # the rows are tenants: staff see their own only
    form = TenantSettingsForm
    change_form_template = "admin/timelogging/tenant/change_form.html"
    fieldsets = [
        ("Tenant", {"fields": ["name", "time_zone"]}),
        (
            "Automated Time Logging",
            {
                "description": "piadesk logs a time entry in the tenant's PSA once an "
                "automation completes on a ticket: start when the automation began, on the "
                "ticket, with notes saying what the automation did.",
                "fields": [
                    "time_logging_enabled",
                    "apply_to",
                    "apply_tags",
                    "log_as",
                    ("specified_psa_user_ref", "specified_psa_user_name"),
                ],
            },
        ),
    ]
    # Read only (auditors: view permission only): every setting as a value in words.
    read_only_fieldsets = [
        ("Tenant", {"fields": ["name", "time_zone_text"]}),
        (
            "Automated Time Logging",
            {"fields": ["status_text", "scope_text", "log_as_text"]},
        ),
    ]
    radio_fields = {"apply_to": admin.VERTICAL, "log_as": admin.VERTICAL}
    inlines = [AutomationInline, TagInline]
    list_display = ("name", "status", "apply_to", "log_as", "active_vendor", "time_zone")
    list_filter = ("time_logging_enabled", "apply_to", "log_as")
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        active = PSAConnection.objects.filter(tenant=OuterRef("pk"), is_active=True)
        return (
            super()
            .get_queryset(request)
            .annotate(active_vendor_code=Subquery(active.values("vendor")[:1]))
        )

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(
            js=[PICKER_JS, TENANT_SETTINGS_JS], css={"all": [TENANT_SETTINGS_CSS]}
        )

    # -- "A specified PSA user", picked from the PSA -------------------------------------------
    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.psa_users_view)
        return [
            path("<path:object_id>/psa-users/", view, name="timelogging_tenant_psa_users"),
            *super().get_urls(),
        ]

    def psa_users_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The picker's list: the users of the tenant's active connection matching ``?q=``."""
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            return json_error("No such tenant.", status=404)
        if not self.has_change_permission(request, tenant):
            return json_error("You may not change this tenant's settings.", status=403)
        connection = PSAConnection.objects.filter(tenant=tenant, is_active=True).first()
        return psa_users_response(request, connection=connection)

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        ref = form.psa_user_to_check()  # before saving: it compares with what was saved
        super().save_model(request, obj, form, change)
        if ref is None:
            return

        def name_from_psa(user: PSAUser) -> None:
            # A user typed by hand gets the PSA's name for it (the picker fills it itself).
            if not obj.specified_psa_user_name and user.name:
                obj.specified_psa_user_name = user.name
                obj.save(update_fields=["specified_psa_user_name", "updated_at"])

        psa_user_check_after_save(
            self,
            request,
            connection=PSAConnection.objects.filter(tenant=obj, is_active=True).first(),
            ref=ref,
            found=name_from_psa,
        )

    # -- "Saved. Status: No → Yes; …" ----------------------------------------------------------
    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        if not add:
            request.__dict__[_CHANGES] = settings_changes(form, formsets or [])
        return super().construct_change_message(request, form, formsets, add)

    # -- one message per save ------------------------------------------------------------------
    # Django says "… was changed successfully", the PSA user check may warn, and the page says
    # what changed and what the settings now do: held while the save completes, then told as
    # one message (at the level of its most serious part).
    def message_user(
        self,
        request: HttpRequest,
        message: Any,
        level: int | str = messages.INFO,
        *args: Any,
        **kw: Any,
    ) -> None:
        held = request.__dict__.get(_HELD)
        if held is None:
            super().message_user(request, message, level, *args, **kw)
        else:  # a level may be named ("warning"), as Django allows
            number = level if isinstance(level, int) else getattr(messages, level.upper())
            held.append((str(message), number))

    def _tell_once(self, request: HttpRequest, obj: Tenant, first: str) -> None:
        """After the PSA user check (save_model's, which may name the user or warn): one
        message, ``first`` (what the save did), what was held, and what the settings do."""

        def tell() -> None:
            held = request.__dict__.pop(_HELD, [])
            obj.refresh_from_db()
            summary, level = settings_summary(obj)
            parts = [first, *(text for text, _ in held), summary]
            level = max([level, *(lvl for _, lvl in held)])
            self.message_user(request, " ".join(parts), level)

        self.after_save(request, tell)

    def response_change(self, request: HttpRequest, obj: Tenant) -> HttpResponse:
        changes = request.__dict__.get(_CHANGES)
        if changes is None:
            return super().response_change(request, obj)
        request.__dict__[_HELD] = []
        response = super().response_change(request, obj)
        request.__dict__[_HELD].clear()  # Django's "was changed successfully": ours says more
        self._tell_once(request, obj, saved_message(changes))
        return response

    def response_add(self, request: HttpRequest, obj: Tenant, *args: Any) -> HttpResponse:
        request.__dict__[_HELD] = []
        response = super().response_add(request, obj, *args)
        request.__dict__[_HELD].clear()  # Django's "was added successfully": said below
        self._tell_once(request, obj, f"Added “{obj}”.")
        return response

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, obj: Any = None, **kw: Any
    ) -> HttpResponse:
        # One tenant at a time: no "Save and add another" (nor "Save as new", save_as is off).
        context["show_save_and_add_another"] = False
        if obj is not None:  # a new tenant has no connection to search or test yet
            context.update(page_context(request, obj))
            attach_picker(
                context["adminform"].form,
                ref_field="specified_psa_user_ref",
                name_field="specified_psa_user_name",
                url=reverse("admin:timelogging_tenant_psa_users", args=[obj.pk]),
            )
        return super().render_change_form(request, context, *args, obj=obj, **kw)  # type: ignore[misc]  # args are add, change, form_url: never obj

    # -- read only -----------------------------------------------------------------------------
    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not self.has_change_permission(request, obj):
            return self.read_only_fieldsets
        return super().get_fieldsets(request, obj)

    @admin.display(description="Time zone")
    def time_zone_text(self, obj: Tenant) -> str:
        return obj.time_zone.replace("_", " ")

    @admin.display(description="Status")
    def status_text(self, obj: Tenant) -> str:
        if obj.time_logging_enabled:
            return "On: piadesk logs a time entry in the PSA when an automation completes."
        return "Off: nothing is logged for anyone."

    @admin.display(description="Apply to")
    def scope_text(self, obj: Tenant) -> str:
        return scope_text(obj.apply_to, obj.apply_tags.all())

    @admin.display(description="Log time entries as")
    def log_as_text(self, obj: Tenant) -> str:
        return log_as_text(obj.log_as, obj.specified_psa_user_ref, obj.specified_psa_user_name)

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        inlines = super().get_inline_instances(request, obj)
        if obj is None:  # a new tenant has no automations yet
            inlines = [i for i in inlines if not isinstance(i, AutomationInline)]
        return inlines

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A tenant owns audited history; it is never hard-deleted from the admin.
        return False

    @admin.display(boolean=True, description="Status", ordering="time_logging_enabled")
    def status(self, obj: Tenant) -> bool:
        return obj.time_logging_enabled

    @admin.display(description="Active PSA", ordering="active_vendor_code")
    def active_vendor(self, obj: Tenant) -> str | None:
        code = getattr(obj, "active_vendor_code", None)
        return dict(vendor_choices()).get(code, code) if code else None


def settings_summary(tenant: Tenant) -> tuple[str, int]:
    """What the saved settings do, in one sentence for the staff (and its message level)."""
    if not tenant.time_logging_enabled:
        return "Time logging is off: nothing is logged for anyone.", messages.SUCCESS
    if tenant.apply_to == Tenant.ApplyTo.NONE:
        return (
            "Time logging is on, but “Apply to” is None: nothing is logged until you pick "
            "“All Clients” or tags.",
            messages.WARNING,
        )
    if tenant.apply_to == Tenant.ApplyTo.ALL:
        scope = "all clients"
    else:
        names = list(tenant.apply_tags.order_by("name").values_list("name", flat=True))
        scope = "clients tagged " + _or_list(names)
    if tenant.log_as == Tenant.LogAs.SPECIFIED:
        user = tenant.specified_psa_user_ref
        if tenant.specified_psa_user_name:
            user = f"{tenant.specified_psa_user_name} ({user})"
        who = f"the PSA user {user}"
    else:
        who = Tenant.LogAs(tenant.log_as).label.lower()
    parts = [f"Time logging is on for {scope}, logged as {who}."]
    level = messages.SUCCESS
    switched_off = tenant.automation_set.filter(log_time=False).count()
    if switched_off:
        plural = "s" if switched_off > 1 else ""
        parts.append(f"It is switched off for {switched_off} automation{plural}.")
    if not PSAConnection.objects.filter(tenant=tenant, is_active=True).exists():
        parts.append(
            "No PSA connection is active yet: entries cannot be posted until one is "
            "added under PSA connections."
        )
        level = messages.WARNING
    return " ".join(parts), level


def _or_list(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"
