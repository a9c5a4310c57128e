"""The "Configuration history" page: who changed what in a tenant's configuration, when, and
from what to what (recorded by django-auditlog, see ``timelogging/audit.py``). Read-only for
everyone; staff and auditors see their tenant's changes only (``TenantScopedModelAdmin`` on the
entries' own ``tenant`` column, served by the ``configchange_tenant`` index).

Search reads text, in part and whatever the case: the object's name, the user's name, the
fields and values changed and an operation's reason. Unlike the run and entry histories (millions
of rows, searched by index only), this history is written by people, a change at a time, and a
tenant's part of it is one index range: a scan of it is cheap. *Export CSV* downloads the list
as filtered and searched, in the words the page shows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from timelogging.admin.base import HistoryModelAdmin
from timelogging.admin.display import one_line
from timelogging.admin.exports import export_csv_view
from timelogging.admin.filters import DateRangeFilter, TenantFilter, selected_tenant_id
from timelogging.admin.site import admin_site
from timelogging.audit import EMPTY, change_lines, recorded_models
from timelogging.exports import CHUNK_SIZE, admin_zone, csv_response, csv_safe
from timelogging.models import ConfigChange
from timelogging.selectors import visible_tenant_ids

SYSTEM = "system"
SYSTEM_LABEL = "piadesk (system)"
ACTION_LABELS = {
    ConfigChange.Action.CREATE: "Created",
    ConfigChange.Action.UPDATE: "Changed",
    ConfigChange.Action.DELETE: "Deleted",
    ConfigChange.Action.ACCESS: "Viewed",
}


@cache
def _recorded_models() -> list[tuple[str, str, int]]:
    """(model name, label, content type id) of every model whose changes or operations are
    recorded."""
    models = sorted(recorded_models(), key=lambda m: str(m._meta.verbose_name_plural))
    types = ContentType.objects.get_for_models(*models)
    return [
        (str(m._meta.model_name), capfirst(str(m._meta.verbose_name_plural)), types[m].pk)
        for m in models
    ]


class ChangedFilter(DateRangeFilter):
    title = "date changed"
    field_name = "timestamp"
    prefix = "changed"


class RecordedModelFilter(admin.SimpleListFilter):
    """What was changed: listed from the models recorded (code), not from the table."""

    title = "what"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, label) for name, label, _ in _recorded_models()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        for name, _, type_id in _recorded_models():
            if name == self.value():
                return queryset.filter(content_type_id=type_id)
        return queryset


class ActorFilter(admin.SimpleListFilter):
    """Who made the change. Offered: piadesk itself and, for one tenant, the users who changed
    its configuration (a short list); across all tenants (superusers), the staff users."""

    title = "user"
    parameter_name = "user"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        users = get_user_model().objects.order_by("username")
        tenant_id = selected_tenant_id(request)
        visible = visible_tenant_ids(request.user)
        if tenant_id is not None:
            acted = ConfigChange.objects.filter(tenant_id=tenant_id, actor__isnull=False)
            users = users.filter(pk__in=acted.values("actor_id"))
        elif visible is None:
            users = users.filter(is_staff=True)
        else:
            users = users.none()
        return [(SYSTEM, SYSTEM_LABEL), *((str(u.pk), u.get_username()) for u in users)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == SYSTEM:
            return queryset.filter(actor__isnull=True)
        if value and value.isdigit():
            return queryset.filter(actor_id=int(value))
        return queryset


def change_rows(obj: ConfigChange) -> list[tuple[str, str]]:
    """(field, what happened to it) for each line of a change, as the page and the CSV say it:
    "old → new" for an update, the value for a creation or a deletion."""
    rows = []
    for line in change_lines(obj):
        if line.kind == "m2m" or not line.old:
            rows.append((line.field, line.new))
        elif obj.action == ConfigChange.Action.CREATE:
            if line.new != EMPTY:  # a new row's unset fields say nothing
                rows.append((line.field, line.new))
        elif obj.action == ConfigChange.Action.DELETE:
            rows.append((line.field, line.old))
        else:
            rows.append((line.field, f"{line.old} → {line.new}"))
    return rows


def who(obj: ConfigChange) -> str:
    return obj.actor.get_username() if obj.actor is not None else SYSTEM_LABEL


def what(obj: ConfigChange) -> str:
    kind = capfirst(str(obj.content_type.model_class()._meta.verbose_name))
    return f"{kind}: {obj.object_repr}"


def action_label(obj: ConfigChange) -> str:
    return ACTION_LABELS.get(obj.action, str(obj.action))


CONFIG_CHANGE_COLUMNS: list[tuple[str, Callable[[ConfigChange], Any]]] = [
    ("tenant", lambda c: c.tenant.name if c.tenant else ""),
    ("user", who),
    ("what", what),
    ("action", action_label),
    ("changes", lambda c: "; ".join(f"{field}: {text}" for field, text in change_rows(c))),
    ("address", lambda c: c.remote_addr or ""),
]


def config_changes_csv_response(changes: QuerySet[ConfigChange]) -> HttpResponseBase:
    # When: in the zone the page shows (the tenant's), named in the header.
    zone = admin_zone()
    when = zone.key if zone is not None else "UTC"

    def rows() -> Iterator[list[str]]:
        yield [f"when ({when})", *(header for header, _ in CONFIG_CHANGE_COLUMNS)]
        for change in changes.select_related("tenant", "actor", "content_type").iterator(
            chunk_size=CHUNK_SIZE
        ):
            stamp = change.timestamp.astimezone(zone or dt.UTC).isoformat()
            yield [stamp, *(csv_safe(cell(change)) for _, cell in CONFIG_CHANGE_COLUMNS)]

    return csv_response(rows(), name="configuration-history", excel_bom=True)


@admin.register(ConfigChange, site=admin_site)
class ConfigChangeAdmin(HistoryModelAdmin):
    list_display = ("timestamp", "tenant_name", "who", "what", "action_label", "changes_html")
    list_display_links = ("timestamp",)
    list_select_related = ("tenant", "actor", "content_type")
    list_only = (
        "timestamp",
        "object_pk",
        "object_repr",
        "action",
        "changes",
        "additional_data",
        "tenant__name",
        "actor__username",
        "content_type__app_label",
        "content_type__model",
    )
    list_filter = (ChangedFilter, RecordedModelFilter, ActorFilter, TenantFilter)
    indexed_sort_fields = ("timestamp",)
    fields = ("timestamp", "tenant", "who", "what", "action_label", "changes_html", "remote_addr")
    readonly_fields = ("who", "what", "action_label", "changes_html")
    search_help_text = (
        "Part of a name (what was changed, or who changed it), a field, a value or a reason."
    )
    change_list_template = "admin/timelogging/configchange/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConfigChange]:
        return super().get_queryset(request).select_related("tenant", "actor", "content_type")

    def get_search_fields(self, request: HttpRequest) -> Any:
        # Not HistoryModelAdmin's exact identifiers: text in part (module docstring).
        return ("object_repr", "actor__username", "changes", "additional_data")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ConfigChange], search_term: str
    ) -> tuple[QuerySet[ConfigChange], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # The JSON columns as text: field names, values (choice codes and labels' sources)
        # and an operation's reason. Credentials are stored masked, so never matched.
        found = queryset.annotate(
            searched_changes=Cast("changes", TextField()),
            searched_data=Cast("additional_data", TextField()),
        ).filter(
            Q(object_repr__icontains=term)
            | Q(actor__username__icontains=term)
            | Q(searched_changes__icontains=term)
            | Q(searched_data__icontains=term)
        )
        messages.info(
            request,
            f"Searched names, users, changed fields and values, and reasons for “{term}”.",
        )
        return found, False

    def get_urls(self) -> list[Any]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(
                lambda request: export_csv_view(self, request, config_changes_csv_response)
            ),
            name="timelogging_configchange_export_csv",
        )
        return [export, *super().get_urls()]

    @admin.display(description="User", ordering="actor__username")
    def who(self, obj: ConfigChange) -> str:
        return who(obj)

    @admin.display(description="What")
    def what(self, obj: ConfigChange) -> Any:
        # One line (long names are cut; the whole on hover), linked to the object.
        label = one_line(what(obj))
        if obj.action == ConfigChange.Action.DELETE:
            return label
        try:
            url = reverse(
                f"admin:{obj.content_type.app_label}_{obj.content_type.model}_change",
                args=[obj.object_pk],
            )
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="Action", ordering="action")
    def action_label(self, obj: ConfigChange) -> str:
        return action_label(obj)

    @admin.display(description="Changes")
    def changes_html(self, obj: ConfigChange) -> str:
        # Each line cut to the column (history.css), the whole line on hover and on the
        # change's page.
        rows = change_rows(obj)
        if not rows:
            return "-"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li title="{}: {}"><strong>{}</strong>: {}</li>',
                ((field, text, field, text) for field, text in rows),
            ),
        )
