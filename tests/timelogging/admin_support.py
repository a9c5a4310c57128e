"""Helpers for the admin tests: turn a rendered admin form back into the POST a browser sends."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Model
from django.urls import reverse


def admin_url(model: type[Model] | Model, view: str, *args: Any) -> str:
    opts = model._meta
    if isinstance(model, Model) and not args and view in ("change", "delete", "history"):
        args = (model.pk,)
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def form_data(form: forms.BaseForm) -> dict[str, Any]:
    """What a browser would submit for ``form`` as rendered (unchanged)."""
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        bound = form[name]
        value = bound.value()
        widget = field.widget
        if isinstance(getattr(widget, "widget", None), forms.Widget):
            widget = widget.widget  # the admin's RelatedFieldWidgetWrapper
        if isinstance(widget, forms.CheckboxInput):
            if value:
                data[bound.html_name] = "on"
            continue
        if isinstance(widget, forms.PasswordInput):
            data[bound.html_name] = ""
            continue
        if value is None:
            multiple = (forms.MultipleChoiceField, forms.ModelMultipleChoiceField)
            value = [] if isinstance(field, multiple) else ""
        if isinstance(value, list | tuple):
            data[bound.html_name] = [str(getattr(v, "pk", v)) for v in value]
        else:
            data[bound.html_name] = str(getattr(value, "pk", value))
    return data


def formset_data(formset: forms.BaseFormSet) -> dict[str, Any]:
    data = form_data(formset.management_form)
    for form in formset.forms:
        data.update(form_data(form))
    return data


def changeform_data(response: Any, **changes: Any) -> dict[str, Any]:
    """The POST data of an admin change form page as rendered, with ``changes`` applied."""
    data = form_data(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        data.update(formset_data(inline.formset))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def form_errors(response: Any) -> dict[str, list[str]]:
    return dict(response.context["adminform"].form.errors)


def inline_errors(response: Any, prefix: str) -> list[dict[str, list[str]]]:
    for inline in response.context["inline_admin_formsets"]:
        if inline.formset.prefix == prefix:
            return [dict(e) for e in inline.formset.errors]
    raise AssertionError(f"no inline with prefix {prefix!r}")


def messages_text(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]
