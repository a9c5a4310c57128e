"""The Tenant Settings page as a product page: what ``TenantAdmin`` shows beside Django's
change form, and the page's own views (site views of ``PiadeskAdminSite``).

- the PSA connection panel (vendor, name, healthy or paused and why, "Test connection");
- the "Preview" panel: what a run would do with the settings on screen, before saving;
- "Saved. …": the confirmation lists what the save changed;
- ``tenant_settings.js`` / ``.css``: fields shown only when they apply, the automation table.

The views are thin: the preview is ``services.preview.settings_preview``, the test is
``services.connections.connection_test``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse

from timelogging.admin.psa_tools import connection_state, connection_test_message, json_error
from timelogging.forms import AutomationTimeForm, SettingsPreviewForm
from timelogging.models import Automation, PSAConnection, Tag, Tenant
from timelogging.services.connections import connection_test
from timelogging.services.decision import SettingsInForce
from timelogging.services.preview import PreviewRun, SettingsPreview, settings_preview

TENANT_SETTINGS_JS = "timelogging/tenant_settings.js"
TENANT_SETTINGS_CSS = "timelogging/tenant_settings.css"
# The automation inline's formset prefix (Django's default for the reverse foreign key).
AUTOMATIONS_PREFIX = "automation_set"
_AUTOMATION_ID_KEY = re.compile(rf"^{AUTOMATIONS_PREFIX}-(\d+)-id$")


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _tenant_to_change(
    site: admin.AdminSite, request: HttpRequest, object_id: str
) -> tuple[Any, Tenant | None, HttpResponse | None]:
    """The tenant page's admin and the tenant, or the JSON answer refusing the request."""
    if request.method != "POST":
        return None, None, json_error("Use POST.", status=405)
    model_admin = site.get_model_admin(Tenant)
    tenant = model_admin.get_object(request, unquote(object_id))  # tenant-scoped queryset
    if tenant is None:
        return None, None, json_error("No such tenant.", status=404)
    if not model_admin.has_change_permission(request, tenant):
        return None, None, json_error("You may not change this tenant's settings.", status=403)
    return model_admin, tenant, None


# -- Preview -----------------------------------------------------------------------------------
def settings_preview_page(
    site: admin.AdminSite, request: HttpRequest, object_id: str
) -> HttpResponse:
    """POST the settings form as on screen (plus the ``preview-*`` fields): JSON for the
    page's script, or a page of its own without JavaScript."""
    model_admin, tenant, refused = _tenant_to_change(site, request, object_id)
    if refused is not None or tenant is None:
        return refused or json_error("No such tenant.", status=404)
    run_form = SettingsPreviewForm(data=request.POST, tenant=tenant)
    if not run_form.is_valid():
        if _wants_json(request):
            errors = {
                run_form[name].label: [str(e) for e in errs]
                for name, errs in run_form.errors.items()
            }
            return JsonResponse({"errors": errors}, status=400)
        return _preview_page(site, request, tenant, run_form=run_form, preview=None, problems=[])
    settings, specified, problems = _settings_on_screen(model_admin, request, tenant)
    automation = run_form.cleaned_data["automation"]
    log_time, minutes, row_problems = _automation_on_screen(request.POST, automation)
    client = run_form.cleaned_data["client"]
    preview = settings_preview(
        tenant=tenant,
        settings=settings,
        specified_ref=specified[0],
        specified_name=specified[1],
        run=PreviewRun(
            client_tag_ids=frozenset(client.tags.values_list("pk", flat=True)),
            automation_name=str(automation),
            automation_log_time=log_time,
            automation_minutes=minutes,
            started_by=run_form.cleaned_data["started_by"],
            ticket_id=run_form.cleaned_data["ticket"],
            duration=dt.timedelta(minutes=run_form.cleaned_data["duration"]),
        ),
    )
    problems += row_problems
    if not _wants_json(request):
        return _preview_page(
            site, request, tenant, run_form=run_form, preview=preview, problems=problems
        )
    return JsonResponse(
        {
            **preview_json(preview),
            "problems": problems,
            "html": render_to_string(
                "admin/timelogging/tenant/preview_result.html",
                {"preview": preview, "problems": problems},
                request=request,
            ),
        }
    )


def _settings_on_screen(
    model_admin: Any, request: HttpRequest, tenant: Tenant
) -> tuple[SettingsInForce, tuple[str, str], list[str]]:
    """The settings as on screen, validated by the page's own form (its rules, its tag
    scoping; validation never asks the PSA). What the form would refuse is returned as
    problems to show."""
    form = model_admin.get_form(request, tenant, change=True)(data=request.POST, instance=tenant)
    saved = {
        "enabled": tenant.time_logging_enabled,
        "apply_to": tenant.apply_to,
        "log_as": tenant.log_as,
        "tags": list(tenant.apply_tags.all()),
        "ref": tenant.specified_psa_user_ref,
        "name": tenant.specified_psa_user_name,
    }
    form.is_valid()
    cleaned = form.cleaned_data
    problems = [
        f"{form.fields[name].label}: {message}" if name in form.fields else str(message)
        for name, errs in form.errors.items()
        for message in errs
    ]

    def value(name: str, key: str) -> Any:
        return cleaned[name] if name in cleaned else saved[key]

    settings = SettingsInForce(
        enabled=bool(value("time_logging_enabled", "enabled")),
        apply_to=value("apply_to", "apply_to"),
        apply_tag_ids=frozenset(t.pk for t in value("apply_tags", "tags")),
        log_as=value("log_as", "log_as"),
    )
    specified = (
        value("specified_psa_user_ref", "ref") or "",
        value("specified_psa_user_name", "name") or "",
    )
    return settings, specified, problems


def _preview_page(
    site: admin.AdminSite,
    request: HttpRequest,
    tenant: Tenant,
    *,
    run_form: SettingsPreviewForm,
    preview: SettingsPreview | None,
    problems: list[str],
) -> HttpResponse:
    """Without JavaScript: the answer on a page of its own (the browser's Back button
    returns to the settings as they were typed)."""
    context = {
        **site.each_context(request),
        "opts": Tenant._meta,
        "original": tenant,
        "title": f"Preview: {tenant}",
        "run_form": run_form,
        "preview": preview,
        "problems": problems,
        "change_url": reverse("admin:timelogging_tenant_change", args=[tenant.pk]),
    }
    status = 200 if preview is not None else 400
    return TemplateResponse(
        request, "admin/timelogging/tenant/preview.html", context, status=status
    )


# -- Test connection ---------------------------------------------------------------------------
def test_connection_page(
    site: admin.AdminSite, request: HttpRequest, object_id: str
) -> HttpResponse:
    """The panel's "Test connection" (POST): JSON for the page's script, else a message
    and back to the settings page."""
    model_admin, tenant, refused = _tenant_to_change(site, request, object_id)
    if refused is not None or tenant is None:
        return refused or json_error("No such tenant.", status=404)
    connection = PSAConnection.objects.filter(tenant=tenant, is_active=True).first()
    if connection is None:
        ok, text = False, "No PSA connection: add one first."
    else:
        result = connection_test(connection=connection, actor=request.user)
        ok, text = result.ok, connection_test_message(connection, result)
    if _wants_json(request):
        return JsonResponse({"ok": ok, "message": text})
    model_admin.message_user(request, text, messages.SUCCESS if ok else messages.ERROR)
    return HttpResponseRedirect(reverse("admin:timelogging_tenant_change", args=[tenant.pk]))


# -- the page's panels -------------------------------------------------------------------------
def page_context(request: HttpRequest, tenant: Tenant) -> dict[str, Any]:
    """What the change page shows beside Django's form: the PSA connection panel and the
    preview panel."""
    return {
        "psa_panel": psa_connection_panel(tenant),
        "preview_form": SettingsPreviewForm(
            tenant=tenant,
            initial={"started_by": getattr(request.user, "email", ""), "duration": 5},
        ),
        "preview_url": reverse("admin:tenant_preview", args=[tenant.pk]),
    }


def saved_message(changes: list[str]) -> str:
    """ "Saved. Status: No → Yes; …": what the save changed."""
    return "Saved. " + ("; ".join(changes) if changes else "Nothing changed") + "."


# --- pieces ---------------------------------------------------------------------------------
def psa_connection_panel(tenant: Tenant) -> dict[str, Any]:
    """What the page's "PSA connection" panel shows."""
    connection = PSAConnection.objects.filter(tenant=tenant, is_active=True).first()
    if connection is None:
        return {
            "connection": None,
            "add_url": reverse("admin:timelogging_psaconnection_add") + f"?tenant={tenant.pk}",
        }
    state, state_words = connection_state(connection)
    return {
        "connection": connection,
        "vendor": connection.vendor_label,
        "paused": connection.paused_at is not None,
        "state": state,
        "state_words": state_words,
        "edit_url": reverse("admin:timelogging_psaconnection_change", args=[connection.pk]),
        "test_url": reverse("admin:tenant_test_connection", args=[tenant.pk]),
    }


def preview_json(preview: SettingsPreview) -> dict[str, Any]:
    user = preview.user
    return {
        "log": preview.log,
        "outcome": preview.outcome,
        "headline": preview.headline,
        "skip_reason": preview.skip_reason,
        "reason": preview.reason,
        "minutes": preview.minutes,
        "minutes_why": preview.minutes_why,
        "start": preview.start.isoformat() if preview.start else None,
        "end": preview.end.isoformat() if preview.end else None,
        "window": preview.window_text,
        "shift": preview.shift,
        "log_as": preview.log_as,
        "user": {"ref": user.ref, "name": user.name, "text": preview.user_text} if user else None,
        "user_error": preview.user_error,
        "ticket": preview.ticket_id,
        "ticket_error": preview.ticket_error,
        "notes": preview.notes,
    }


def _automation_on_screen(data: Any, automation: Automation) -> tuple[bool, int | None, list[str]]:
    """The automation's "Log time" and minutes as in its row of the table on screen (saved
    values when the row is not on the page or its minutes are refused, with the reason)."""
    for key in data:
        match = _AUTOMATION_ID_KEY.match(key)
        if match is None or data.get(key) != str(automation.pk):
            continue
        row = AutomationTimeForm(
            data=data, instance=automation, prefix=f"{AUTOMATIONS_PREFIX}-{match.group(1)}"
        )
        if row.is_valid():
            return row.cleaned_data["log_time"], row.cleaned_data["minutes"], []
        problems = [
            f"{automation}: {row.fields[name].label}: {message}"
            for name, errs in row.errors.items()
            for message in errs
        ]
        log_time = row.cleaned_data.get("log_time", automation.log_time)
        return log_time, automation.minutes, problems
    return automation.log_time, automation.minutes, []


# --- the changes a save made ------------------------------------------------------------------
def settings_changes(form: Any, formsets: Any) -> list[str]:
    """Each change of a save, in words: ``Apply to: All Clients → Based on Tag (Time
    Logging)``, ``Reset password: 20 minutes → off``, ``Tag added: Ad-hoc``.

    Old values are the form's initial ones (the settings as they were when the page was
    shown), new ones what was saved.
    """
    changes: list[str] = []
    changed = set(form.changed_data)
    old, new = form.initial, form.cleaned_data

    def label(name: str) -> str:
        return str(form.fields[name].label)

    if "name" in changed:
        changes.append(f"{label('name')}: {old.get('name')} → {new.get('name')}")
    if "time_zone" in changed:
        changes.append(f"{label('time_zone')}: {old.get('time_zone')} → {new.get('time_zone')}")
    if "time_logging_enabled" in changed:
        changes.append(
            f"{label('time_logging_enabled')}: {_on_off(old.get('time_logging_enabled'))} → "
            f"{_on_off(new.get('time_logging_enabled'))}"
        )
    if changed & {"apply_to", "apply_tags"}:
        before = scope_text(old.get("apply_to"), old.get("apply_tags") or [])
        after = scope_text(new.get("apply_to"), new.get("apply_tags") or [])
        if before != after:
            changes.append(f"{label('apply_to')}: {before} → {after}")
        else:  # only the tags changed, and they do not apply now
            changes.append(
                f"{label('apply_tags')}: {_names(old.get('apply_tags') or [])} → "
                f"{_names(new.get('apply_tags') or [])}"
            )
    if changed & {"log_as", "specified_psa_user_ref", "specified_psa_user_name"}:
        before = log_as_text(
            old.get("log_as"), old.get("specified_psa_user_ref"), old.get("specified_psa_user_name")
        )
        after = log_as_text(
            new.get("log_as"), new.get("specified_psa_user_ref"), new.get("specified_psa_user_name")
        )
        if before != after:
            changes.append(f"{label('log_as')}: {before} → {after}")
    for formset in formsets:
        for row in formset.forms:
            if not row.has_changed() or not hasattr(row, "cleaned_data"):
                continue
            if formset.can_delete and formset._should_delete_form(row):
                changes.append(f"{row.instance._meta.verbose_name} deleted: {row.instance}")
                continue
            changes.extend(_row_changes(row))
    return changes


def _row_changes(row: forms.ModelForm) -> list[str]:
    instance, old, new = row.instance, row.initial, row.cleaned_data
    existed = bool(old.get("id"))
    if isinstance(instance, Automation):
        name = old.get("name") or instance.key
        out = []
        if "name" in row.changed_data:
            out.append(f"Automation “{name}” renamed “{new.get('name') or instance.key}”")
        before = automation_rule_text(old.get("log_time", True), old.get("minutes"))
        after = automation_rule_text(new.get("log_time"), new.get("minutes"))
        if before != after:
            out.append(f"{name}: {before} → {after}")
        return out
    if isinstance(instance, Tag):
        if not existed:
            return [f"Tag added: {new.get('name')}"]
        if "name" in row.changed_data:
            return [f"Tag renamed: {old.get('name')} → {new.get('name')}"]
        return []
    verbose = instance._meta.verbose_name
    if not existed:
        return [f"{str(verbose).capitalize()} added: {instance}"]
    return [f"{str(verbose).capitalize()} “{instance}” changed"]


def _on_off(value: Any) -> str:
    return "On" if value in (True, "True") else "Off"


def _names(tags: Any) -> str:
    names = sorted(str(t) for t in tags)
    return ", ".join(names) if names else "none"


def scope_text(apply_to: Any, tags: Any) -> str:
    if apply_to not in Tenant.ApplyTo.values:
        return str(apply_to or "-")
    text = Tenant.ApplyTo(apply_to).label
    if apply_to == Tenant.ApplyTo.TAGS:
        text += f" ({_names(tags)})"
    return str(text)


def log_as_text(log_as: Any, ref: Any, name: Any) -> str:
    if log_as not in Tenant.LogAs.values:
        return str(log_as or "-")
    text = str(Tenant.LogAs(log_as).label)
    if log_as == Tenant.LogAs.SPECIFIED:
        who = f"{name}, {ref}" if name and name != ref else (ref or "nobody chosen")
        text += f" ({who})"
    return text


def automation_rule_text(log_time: Any, minutes: Any) -> str:
    if not log_time:
        return "off"
    if minutes:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return "real duration"
