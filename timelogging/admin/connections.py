"""PSA connections (credentials) and the e-mail → PSA user mappings."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from psa.base import PSAUser
from psa.outbound import names_resolved_ahead
from psa.registry import BACKENDS, backend_class, vendor_choices
from timelogging.admin.base import TenantScopedModelAdmin
from timelogging.admin.psa_tools import (
    CONNECTION_PLACEHOLDER,
    PICKER_JS,
    attach_picker,
    connection_state,
    connection_test_message,
    json_error,
    psa_user_check_after_save,
    psa_users_response,
)
from timelogging.admin.site import admin_site
from timelogging.forms import PSAConnectionForm, PSAUserMappingForm, default_vendor
from timelogging.models import PSAConnection, PSAUserMapping
from timelogging.services.connections import connection_save, connection_test
from timelogging.services.delivery import connection_pause, connection_resume

# The name of the "Test connection" button that submits the change form (what is typed).
TEST_TYPED = "_test_connection"
# A test of what is typed is not the connection's: its state keeps the last stored test.
TYPED_NOT_SAVED = (
    " (as typed, not saved: the connection's state still shows the last test of its saved "
    "settings)"
)
# Each test is a live request to a PSA while staff wait: a handful per click is plenty.
MAX_TESTS_PER_ACTION = 10
# The add form says whose fields it shows (a hidden input): a POST whose vendor differs is the
# vendor step of a browser without JavaScript, not a connection to save.
FIELDS_FOR = "_fields_for"
# What the add page carries over when it is shown again for another vendor (never a secret).
KEPT_ON_VENDOR_STEP = ("tenant", "name")


class VendorFilter(admin.SimpleListFilter):
    title = "vendor"
    parameter_name = "vendor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return vendor_choices()

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(vendor=self.value()) if self.value() else queryset


# Every vendor's address fields: a POST names the vendor only on the add page.
URL_FIELDS = frozenset(
    field.name
    for backend in BACKENDS.values()
    for field in backend.config_fields
    if field.kind == "url"
)


def posted_hosts(request: HttpRequest) -> list[str]:
    """The host names in the address fields of a posted connection page."""
    hosts = []
    for name in URL_FIELDS:
        try:
            host = urlsplit(request.POST.get(name, "").strip()).hostname
        except ValueError:
            continue  # the form says what is wrong with it
        if host:
            hosts.append(host)
    return hosts


@admin.register(PSAConnection, site=admin_site)
class PSAConnectionAdmin(TenantScopedModelAdmin):
    """The form's fields come from the vendor backend's ``config_fields``.

    The vendor is chosen on the add page (``?vendor=``; the select reloads the page with the
    chosen vendor's fields) and fixed afterwards: entries posted through a connection keep
    pointing at it, so another PSA is another connection.
    """

    form = PSAConnectionForm
    ordering = ("tenant__name", "-is_active", "name", "pk")  # stable pages (autocomplete too)
    fixed_on_change = ("vendor",)
    list_display = ("tenant", "vendor_label", "name", "is_active", "site", "state_summary")
    list_select_related = ("tenant",)
    list_filter = (VendorFilter, "is_active")
    search_fields = ("name", "tenant__name")
    autocomplete_fields = ("tenant",)
    actions = ["test_connections", "pause_connections", "resume_connections"]
    readonly_fields = ("state",)
    change_form_template = "admin/timelogging/psaconnection/change_form.html"

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

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        shown, chosen = request.POST.get(FIELDS_FOR), request.POST.get("vendor")
        if request.method == "POST" and shown and chosen in BACKENDS and chosen != shown:
            # Without JavaScript the vendor select cannot swap the fields: "Save" does, by
            # showing the page again for the chosen vendor (nothing is saved, no secret is put
            # in the address).
            query = request.GET.copy()
            query["vendor"] = chosen
            for name in KEPT_ON_VENDOR_STEP:
                if request.POST.get(name):
                    query[name] = request.POST[name]
            label = backend_class(chosen).label
            self.message_user(request, f"Enter the {label} settings, then save.", messages.INFO)
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        extra = {**(extra_context or {}), "fields_for": self._vendor(request, None)}
        return super().add_view(request, form_url, extra)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        # The outbound policy resolves the PSA addresses typed here; Django validates and saves
        # in one transaction, which a slow resolver would hold open (and the connection row
        # locked): the names are looked up first, and the checks inside use those answers.
        with names_resolved_ahead(posted_hosts(request)):
            return super().changeform_view(request, object_id, form_url, extra_context)

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
    def state_summary(self, obj: PSAConnection) -> str:
        """The list's short form of ``state``: a pause reason spells out the whole fix (the
        Autotask proxy advice is a paragraph), so the list shows its start and the rest on
        hover; the change page shows it all."""
        full = self.state(obj)
        short = Truncator(full).chars(110)
        return format_html('<span title="{}">{}</span>', full, short) if short != full else full

    @admin.display(description="State")
    def state(self, obj: PSAConnection) -> str:
        return connection_state(obj)[1] if obj.pk is not None else "-"

    # -- PSA look-ups: "Test connection" and the user picker's list ----------------------------
    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/test/",
                view(self.test_connection_view),
                name="timelogging_psaconnection_test",
            ),
            path(
                "<path:object_id>/psa-users/",
                view(self.psa_users_view),
                name="timelogging_psaconnection_psa_users",
            ),
            *super().get_urls(),
        ]

    def test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The change page's "Test connection" button (POST, so CSRF-protected).

        The button submits the change form (``_test_connection``): what is typed is tested,
        unsaved, and the page is shown again as it was. A bare POST tests the stored
        connection and goes back to its page.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        connection = self.get_object(request, unquote(object_id))
        if connection is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]  # Django's own "no such object" answer, not in the stubs
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        if TEST_TYPED in request.POST:
            return self._test_typed(request, connection)
        result = connection_test(connection=connection, actor=request.user)
        self.message_user(
            request,
            connection_test_message(connection, result),
            messages.SUCCESS if result.ok else messages.ERROR,
        )
        change_url = reverse(
            "admin:timelogging_psaconnection_change",
            args=[connection.pk],
            current_app=self.admin_site.name,
        )
        return HttpResponseRedirect(change_url)

    def _test_typed(self, request: HttpRequest, connection: PSAConnection) -> HttpResponse:
        form = self.get_form(request, connection, change=True)(
            request.POST, request.FILES, instance=connection
        )
        # Validated like a save (a new address with the stored secrets is an error next to
        # the secrets), then tested with the typed values; nothing is saved.
        if form.is_valid():
            result = connection_test(
                connection=connection,
                settings=form.config_settings(),
                secrets=form.config_secrets(),
            )
            self.message_user(
                request,
                connection_test_message(connection, result) + TYPED_NOT_SAVED,
                messages.SUCCESS if result.ok else messages.ERROR,
            )
        else:
            self.message_user(
                request, "Not tested: correct the errors below first.", messages.ERROR
            )
        return self._render_typed_form(request, connection, form)

    def _render_typed_form(
        self, request: HttpRequest, obj: PSAConnection, form: Any
    ) -> HttpResponse:
        """The change page with ``form`` as submitted (what Django's changeform view shows
        for an invalid form), posting to the change page again."""
        fieldsets = self.get_fieldsets(request, obj)
        admin_form = helpers.AdminForm(
            form,
            list(fieldsets),
            self.get_prepopulated_fields(request, obj),
            self.get_readonly_fields(request, obj),
            model_admin=self,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change {self.opts.verbose_name}",
            "subtitle": str(obj),
            "adminform": admin_form,
            "object_id": obj.pk,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
        }
        change_url = reverse(
            "admin:timelogging_psaconnection_change",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )
        return self.render_change_form(
            request, context, add=False, change=True, obj=obj, form_url=change_url
        )

    @admin.action(description="Test selected connections", permissions=["change"])
    def test_connections(self, request: HttpRequest, queryset: Any) -> None:
        connections = list(queryset.select_related("tenant")[: MAX_TESTS_PER_ACTION + 1])
        if len(connections) > MAX_TESTS_PER_ACTION:
            self.message_user(
                request,
                f"Select at most {MAX_TESTS_PER_ACTION} connections to test at once.",
                messages.WARNING,
            )
            return
        for connection in connections:
            result = connection_test(connection=connection, actor=request.user)
            self.message_user(
                request,
                connection_test_message(connection, result),
                messages.SUCCESS if result.ok else messages.ERROR,
            )

    def psa_users_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The picker's list for one connection (the user mapping pages)."""
        connection = self.get_object(request, unquote(object_id))
        if connection is None:
            return json_error("No such PSA connection.", status=404)
        user = request.user
        may_pick = self.has_change_permission(request, connection) or any(
            user.has_perm(f"timelogging.{action}_psausermapping") for action in ("add", "change")
        )
        if not (self.has_view_permission(request, connection) and may_pick):
            return json_error("You may not look up this connection's users.", status=403)
        return psa_users_response(request, connection=connection)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, obj: Any = None, **kw: Any
    ) -> HttpResponse:
        if obj is not None and obj.paused_at is not None and request.method == "GET":
            self.message_user(
                request,
                f"This connection is paused: its entries are held until it is resumed. Why: "
                f"{obj.pause_reason} Fix that, check it with “Test connection”, then resume "
                "it (PSA connections → “Resume selected connections”).",
                messages.WARNING,
            )
        return super().render_change_form(request, context, *args, obj=obj, **kw)  # type: ignore[misc]  # args are add, change, form_url: never obj

    @admin.action(
        description="Pause selected connections (hold their entries)",
        permissions=["change"],
    )
    def pause_connections(self, request: HttpRequest, queryset: Any) -> None:
        held = sum(
            connection_pause(connection_id=pk, reason=f"Paused by {request.user}.")
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Paused; {held} waiting entries held.", messages.SUCCESS)

    @admin.action(
        description="Resume selected connections (post their held entries)",
        permissions=["change"],
    )
    def resume_connections(self, request: HttpRequest, queryset: Any) -> None:
        released = sum(
            connection_resume(connection_id=pk, actor=request.user)
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
        # Each vendor names its address differently (ConnectWise site, Halo resource server,
        # Autotask zone discovery, empty for Autotask's own). The host says which PSA it is;
        # the full address is on the connection's page.
        for name in ("site_url", "resource_url", "discovery_url"):
            if value := obj.settings.get(name):
                return urlsplit(str(value)).netloc or str(value)
        return None

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


@admin.register(PSAUserMapping, site=admin_site)
class PSAUserMappingAdmin(TenantScopedModelAdmin):
    """Who an e-mail is in the PSA. Rows saved here are staff overrides: the automatic
    resolution leaves them alone."""

    form = PSAUserMappingForm
    fields = ("connection", "tenant", "email", "psa_user_ref", "psa_user_name", "source")
    list_display = ("email", "psa_user_ref", "psa_user_name", "source", "connection", "tenant")
    list_select_related = ("tenant", "connection", "connection__tenant")
    list_filter = ("source", "tenant")
    search_fields = ("=email", "psa_user_ref", "psa_user_name")
    autocomplete_fields = ("connection",)

    class Media:
        js = (PICKER_JS,)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            # Tenant and source follow from saving (the connection's tenant; "set by staff"):
            # showing the model's defaults here would say "Resolved by e-mail".
            return ("connection", "email", "psa_user_ref", "psa_user_name")
        return self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("connection",) if obj is not None else ()
        return (*fixed, "tenant", "source")

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, obj: Any = None, **kw: Any
    ) -> HttpResponse:
        # The picker searches the mapping's connection: fixed once saved, chosen on the page
        # when adding.
        picker: dict[str, str] = {}
        if obj is not None:
            picker["url"] = _psa_users_url(obj.connection_id)
        else:
            picker["url_template"] = _psa_users_url(CONNECTION_PLACEHOLDER)
            picker["connection_field"] = "connection"
        attach_picker(
            context["adminform"].form,
            ref_field="psa_user_ref",
            name_field="psa_user_name",
            **picker,
        )
        return super().render_change_form(request, context, *args, obj=obj, **kw)  # type: ignore[misc]  # args are add, change, form_url: never obj

    def save_model(
        self, request: HttpRequest, obj: PSAUserMapping, form: Any, change: bool
    ) -> None:
        ref = form.psa_user_to_check()  # before saving: it compares with what was saved
        obj.tenant_id = obj.connection.tenant_id
        obj.source = PSAUserMapping.Source.MANUAL
        super().save_model(request, obj, form, change)

        def name_from_psa(user: PSAUser) -> None:
            # A user typed by hand gets the PSA's name for it (the picker fills it itself).
            if not obj.psa_user_name and user.name:
                obj.psa_user_name = user.name
                obj.save(update_fields=["psa_user_name"])

        psa_user_check_after_save(
            self, request, connection=obj.connection, ref=ref, found=name_from_psa
        )


def _psa_users_url(connection_id: Any) -> str:
    return reverse("admin:timelogging_psaconnection_psa_users", args=[connection_id])
