"""Forms of the staff-facing admin: tenant settings, the tenant's catalogue, PSA connections.

Validation lives here so that every mistake is reported next to the field concerned, in
words that say what to fix; the admin classes only wire these forms up.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.forms.widgets import Input

from psa.base import ConfigField
from psa.registry import BACKENDS, backend_class, vendor_choices
from timelogging.crypto import SecretsUnavailable
from timelogging.models import (
    MAX_MINUTES,
    Automation,
    Client,
    PSAConnection,
    PSAUserMapping,
    Tag,
    Tenant,
    default_time_zone,
    time_zone_names,
)
from timelogging.services.connections import connection_validate

TAGS_REQUIRED = "Choose at least one tag, or pick “All Clients”."
PSA_USER_REQUIRED = "Choose the PSA user to log time as."
TAG_NOT_OURS = "Tag %(value)s is not one of this tenant's tags; choose among the tags listed."
TAG_INVALID = "“%(pk)s” is not a tag; choose among the tags listed."
MINUTES_RANGE = (
    f"Enter a number of minutes from 1 to {MAX_MINUTES}, or leave it empty to log the run's "
    "real duration."
)
SECRET_KEEP_HELP = "Stored encrypted; leave blank to keep the current value"
SECRET_NEW_HELP = "Stored encrypted and never shown again."
SECRET_UNREADABLE = (
    "The stored value cannot be decrypted with the configured encryption keys; enter it again."
)


class ScopedModelForm(forms.ModelForm):
    """A form whose scope fields (the tenant, ...) are read-only once the row exists.

    Django leaves out of model validation every field that is not on the form, and with it
    every constraint naming such a field: changing a user mapping's e-mail to one its
    connection already maps would pass validation and end in an IntegrityError (a 500). The
    scope is fixed and known on change, so keep those constraints checked.
    """

    scope_fields: ClassVar[tuple[str, ...]] = ("tenant",)

    def _get_validation_exclusions(self) -> set[str]:
        exclude = super()._get_validation_exclusions()  # type: ignore[misc]  # private Django API, not in the stubs
        if self.instance.pk is not None:
            exclude.difference_update(n for n in self.scope_fields if n not in self.fields)
        return exclude


def _tenant_tags(tenant_id: int | None) -> QuerySet[Tag]:
    if tenant_id is None:
        return Tag.objects.none()  # a new tenant has no tags yet
    return Tag.objects.filter(tenant_id=tenant_id).order_by("name")


def model_choice_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField[Any]:
    """``form.fields[name]``, known to be a model choice field (single or multiple)."""
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField), name
    return field


def _minutes_field() -> forms.IntegerField:
    return forms.IntegerField(
        label="Minutes",
        required=False,
        min_value=1,
        max_value=MAX_MINUTES,
        error_messages={"min_value": MINUTES_RANGE, "max_value": MINUTES_RANGE},
        help_text="Minutes to log per run. Empty: the run's real duration.",
        widget=forms.NumberInput(attrs={"class": "vIntegerField", "style": "width: 6em"}),
    )


# --- tenant settings ------------------------------------------------------------------------
class SwitchInput(Input):
    """A checkbox drawn as an on/off switch (``role="switch"``, its state in words beside it);
    without CSS or JavaScript, a plain checkbox. Not a ``CheckboxInput`` subclass on purpose:
    the admin lays those out as "[x] Label", and a setting reads "Status: [switch] On"."""

    input_type = "checkbox"
    template_name = "timelogging/widgets/switch.html"
    # Posted and read as a checkbox: absent means off.
    value_from_datadict = forms.CheckboxInput.value_from_datadict
    value_omitted_from_data = forms.CheckboxInput.value_omitted_from_data

    def __init__(self, *, on_label: str = "On", off_label: str = "Off") -> None:
        super().__init__(attrs={"role": "switch", "class": "piadesk-switch-input"})
        self.on_label, self.off_label = on_label, off_label

    def format_value(self, value: Any) -> str | None:
        return None  # no value attribute: a checked box posts "on"

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        if value is True or value in ("True", "true", "on", "1"):
            attrs = {**(attrs or {}), "checked": True}
        context = super().get_context(name, value, attrs)
        context["widget"].update(on_label=self.on_label, off_label=self.off_label)
        return context


class TenantSettingsForm(forms.ModelForm):
    """The "Tenant Settings → Automated Time Logging" page."""

    time_zone = forms.ChoiceField(
        label="Time zone",
        # Left out (a form posted by a script): the site's zone, as for a new tenant.
        required=False,
        choices=lambda: [(name, name.replace("_", " ")) for name in time_zone_names()],
        error_messages={
            "invalid_choice": "“%(value)s” is not a time zone: choose one like "
            "America/New_York or Europe/London."
        },
        help_text=Tenant._meta.get_field("time_zone").help_text,
    )

    time_logging_enabled = forms.BooleanField(
        label="Status",
        required=False,
        widget=SwitchInput(),
        help_text="On: piadesk logs a time entry in the PSA when an automation completes. "
        "Off: nothing is logged for anyone.",
    )

    class Meta:
        model = Tenant
        fields = [
            "name",
            "time_zone",
            "time_logging_enabled",
            "apply_to",
            "apply_tags",
            "log_as",
            "specified_psa_user_ref",
            "specified_psa_user_name",
        ]
        widgets = {
            # A compact list of checkboxes (no Ctrl-click, no two-box chooser): a tenant has
            # a handful of tags, up to a few dozen (tenant_settings.css lays them in columns).
            "apply_tags": forms.CheckboxSelectMultiple(),
        }
        help_texts = {
            "apply_to": "None: nothing is logged, even when Status is On. "
            "All Clients: every client. Based on Tag: clients carrying any of the tags below.",
            "log_as": "The user who started the automation is found in the PSA by e-mail; the "
            "ticket assignee is read from the ticket when the entry is posted.",
        }
        error_messages = {"name": {"unique": "Another tenant already has this name."}}
        labels = {
            "apply_to": "Apply to",
            "log_as": "Log time entries as",
            "specified_psa_user_name": "Specified PSA user's name",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "apply_tags" not in self.fields:
            # Viewed without the right to change (auditors): the admin shows every field
            # read-only and the form has none of them to set up.
            return
        tags = model_choice_field(self, "apply_tags")
        # Only the tenant's own tags are choices: another tenant's tag POSTed by hand is an
        # invalid choice, with a message that says so.
        tags.queryset = _tenant_tags(self.instance.pk)
        tags.error_messages["invalid_choice"] = TAG_NOT_OURS
        tags.error_messages["invalid_pk_value"] = TAG_INVALID
        if self.instance.pk is None:
            tags.help_text = (
                "With “Based on Tag”: create the tenant's tags below and save; they can then "
                "be chosen here."
            )
        self.fields["specified_psa_user_ref"].help_text += " Required with “A specified PSA user”."

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what every clean() here returns (Django's stubs: maybe None)
        if (
            cleaned.get("apply_to") == Tenant.ApplyTo.TAGS
            and "apply_tags" not in self.errors
            and not cleaned.get("apply_tags")
        ):
            self.add_error("apply_tags", TAGS_REQUIRED)
        if cleaned.get("log_as") == Tenant.LogAs.SPECIFIED and not cleaned.get(
            "specified_psa_user_ref"
        ):
            self.add_error("specified_psa_user_ref", PSA_USER_REQUIRED)
        return cleaned

    def clean_time_zone(self) -> str:
        return self.cleaned_data.get("time_zone") or self.instance.time_zone or default_time_zone()

    def psa_user_to_check(self) -> str | None:
        """The specified PSA user, when this save chooses one (not on every save: an unrelated
        change, a tag, must not call the PSA nor warn about an outage). Validation never asks
        the PSA: the admin asks after saving (``admin/psa_tools.py``)."""
        cleaned = self.cleaned_data
        if cleaned.get("log_as") != Tenant.LogAs.SPECIFIED:
            return None
        if self.instance.pk is not None and not (
            {"log_as", "specified_psa_user_ref"} & set(self.changed_data)
        ):
            return None
        return cleaned.get("specified_psa_user_ref") or None


class AutomationTimeForm(forms.ModelForm):
    """One automation's row of "Time logging per automation" (and the changelist's)."""

    minutes = _minutes_field()

    class Meta:
        model = Automation
        fields = ["name", "log_time", "minutes"]
        labels = {"log_time": "Log time"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An empty cell says what it means: the run's real duration is logged.
        self.fields["minutes"].widget.attrs.update(placeholder="real duration", style="width: 8em")


class SettingsPreviewForm(forms.Form):
    """The run the settings page's "Preview" imagines: one of the tenant's clients and
    automations, who starts it, on which ticket, and how long it runs (it completes now)."""

    client = forms.ModelChoiceField(queryset=Client.objects.none(), empty_label=None)
    automation = forms.ModelChoiceField(queryset=Automation.objects.none(), empty_label=None)
    started_by = forms.EmailField(
        label="Started by",
        required=False,
        help_text="The e-mail of who starts it (found in the PSA by e-mail).",
        widget=forms.EmailInput(attrs={"class": "vTextField"}),
    )
    ticket = forms.RegexField(
        label="Ticket",
        regex=r"^\d{1,18}$",
        required=False,
        error_messages={"invalid": "A ticket id is digits only, e.g. 1001."},
        help_text="Checked in the PSA; needed to find the ticket's assignee.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 10}),
    )
    duration = forms.IntegerField(
        label="Run duration",
        min_value=1,
        max_value=MAX_MINUTES,
        initial=5,
        help_text="Minutes the run takes; it completes now.",
        widget=forms.NumberInput(attrs={"style": "width: 6em"}),
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "preview")
        super().__init__(*args, **kwargs)
        model_choice_field(self, "client").queryset = Client.objects.filter(tenant=tenant).order_by(
            "name", "key"
        )
        model_choice_field(self, "automation").queryset = Automation.objects.filter(
            tenant=tenant
        ).order_by("name", "key")


class TagInlineFormSet(forms.BaseInlineFormSet):
    """The tenant's tags: names are unique per tenant whatever their case."""

    def clean(self) -> None:
        super().clean()
        seen: dict[str, str] = {}
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or (
                self.can_delete and self._should_delete_form(form)  # type: ignore[attr-defined]  # private Django API, not in the stubs
            ):
                continue
            name = form.cleaned_data.get("name")
            if not name:
                continue
            # Checked here for the whole list: the rows' own validation leaves out the
            # constraint (it names the tenant, the inline's foreign key), and the database
            # would refuse the second one.
            key = name.casefold()
            if key in seen:
                form.add_error(
                    "name",
                    f"The tenant already has a tag named “{seen[key]}”: tag names must differ "
                    "(whatever their case).",
                )
            else:
                seen[key] = name


# --- the tenant's catalogue -----------------------------------------------------------------
def _tenant_of(form: forms.ModelForm) -> Tenant | None:
    return form.cleaned_data.get("tenant") or (
        form.instance.tenant if form.instance.tenant_id else None
    )


def _check_unique_in_tenant(form: forms.ModelForm, field: str, *, what: str, lookup: str) -> None:
    """Say on ``field`` itself when the tenant already has a row with this value (the model's
    constraint would report it as an error of the whole form)."""
    tenant, value = _tenant_of(form), form.cleaned_data.get(field)
    if tenant is None or not value:
        return
    model = form._meta.model
    taken = model.objects.filter(tenant=tenant, **{f"{field}__{lookup}": value})
    if form.instance.pk is not None:
        taken = taken.exclude(pk=form.instance.pk)
    if taken.exists():
        form.add_error(field, f"{tenant.name} already has {what} “{value}”.")


class TagForm(ScopedModelForm):
    class Meta:
        model = Tag
        fields = ["tenant", "name"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what every clean() here returns (Django's stubs: maybe None)
        # Names are unique per tenant whatever their case (Lower("name") in the constraint).
        _check_unique_in_tenant(self, "name", what="a tag named", lookup="iexact")
        return cleaned


class AutomationForm(ScopedModelForm):
    minutes = _minutes_field()

    class Meta:
        model = Automation
        fields = ["tenant", "key", "name", "log_time", "minutes"]
        labels = {"log_time": "Log time"}

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what every clean() here returns (Django's stubs: maybe None)
        _check_unique_in_tenant(self, "key", what="an automation with key", lookup="exact")
        return cleaned


def _tag_with_tenant(tag: Tag) -> str:
    return f"{tag.tenant.name}: {tag.name}"


class ClientForm(ScopedModelForm):
    """A client and its tags, which must be its tenant's own."""

    class Meta:
        model = Client
        fields = ["tenant", "key", "name", "tags"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "tags" not in self.fields:
            return
        tags = model_choice_field(self, "tags")
        tenant_id = self.instance.tenant_id or (
            None if self.is_bound else _int_or_none(self.initial.get("tenant"))
        )
        if tenant_id is not None:
            tags.queryset = _tenant_tags(tenant_id)
        else:
            # Adding, tenant not chosen yet: every tag the field offers (in the admin, those of
            # the tenants the user may see), named with its tenant; clean() checks that the
            # chosen ones belong to the tenant chosen.
            assert tags.queryset is not None  # built from the model field
            tags.queryset = tags.queryset.select_related("tenant").order_by("tenant__name", "name")
            tags.label_from_instance = _tag_with_tenant  # type: ignore[assignment, method-assign]  # Django's documented way to relabel choices
            tags.help_text = "Only tags of the client's tenant can be chosen."
        tags.error_messages["invalid_choice"] = TAG_NOT_OURS
        tags.error_messages["invalid_pk_value"] = TAG_INVALID

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what every clean() here returns (Django's stubs: maybe None)
        _check_unique_in_tenant(self, "key", what="a client with key", lookup="exact")
        tenant = _tenant_of(self)
        chosen = cleaned.get("tags")
        if tenant is not None and chosen:
            foreign = sorted(t.name for t in chosen if t.tenant_id != tenant.pk)
            if foreign:
                self.add_error(
                    "tags",
                    f"These tags belong to another tenant, not to {tenant.name}: "
                    f"{', '.join(foreign)}. Remove them, or create them for {tenant.name}.",
                )
        return cleaned


class AddTagForm(forms.Form):
    """The "Add tag…" action on clients: one of the clients' tenant's tags."""

    tag = forms.ModelChoiceField(
        queryset=Tag.objects.none(),
        empty_label=None,
        help_text="Create tags on the tenant's settings page.",
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "tag").queryset = _tenant_tags(tenant.pk)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- PSA connections ------------------------------------------------------------------------
class PSAConnectionForm(ScopedModelForm):
    """A connection with one field per config field of its vendor's backend.

    Use ``PSAConnectionForm.for_vendor(vendor)``: the fields depend on the vendor. Non-secret
    values go to ``connection.settings``; secrets are never rendered back (empty password
    inputs) and are required only when there is no stored value to keep. Saving is
    ``timelogging.services.connections.connection_save`` (see the admin's ``save_model``).
    """

    vendor_name: ClassVar[str] = ""
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()

    # A real choice (the model field has none: vendors come from the registry, so a new one
    # needs no migration). Choosing another one shows its fields: the page's script reloads
    # with ?vendor=, and without JavaScript "Save" does (see PSAConnectionAdmin.add_view).
    vendor = forms.ChoiceField(
        label="PSA",
        choices=vendor_choices,
        help_text="Each PSA has its own settings below; choosing another one shows its fields.",
    )

    class Meta:
        model = PSAConnection
        fields = ["tenant", "vendor", "name", "is_active", "requests_per_hour", "max_concurrency"]
        help_texts = {
            "is_active": "A tenant has exactly one active connection: activating this one "
            "deactivates the tenant's other connection.",
        }

    @classmethod
    def for_vendor(cls, vendor: str) -> type[PSAConnectionForm]:
        backend = backend_class(vendor)
        reserved = set(cls._meta.fields or ()) | {"settings", "secrets_encrypted"}
        attrs: dict[str, Any] = {"vendor_name": vendor, "config_fields": backend.config_fields}
        for field in backend.config_fields:
            if field.name in reserved:
                raise ImproperlyConfigured(
                    f"{backend.__name__}.config_fields names a field {field.name!r}, which "
                    "the PSA connection form already uses: rename it."
                )
            attrs[field.name] = config_form_field(field)
        return type(f"{backend.__name__}ConnectionForm", (cls,), attrs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            # Fixed once created (entries point at the connection; another PSA is another
            # connection): the admin shows it read-only.
            self.fields.pop("vendor", None)
        stored = self.instance.settings if self.instance.pk else {}
        backend = backend_class(self.vendor_name) if self.vendor_name else None
        labels = {f.name: f.label for f in self.config_fields}
        destination = " or ".join(
            labels.get(n, n) for n in (backend.destination_fields if backend else ())
        )
        for field in self.config_fields:
            if field.secret:
                if self.instance.pk is not None:
                    # Change: a blank secret keeps the stored one (connection_save merges),
                    # as long as the destination stays (connection_secrets_merge).
                    self.fields[field.name].required = False
                    self.fields[field.name].help_text = SECRET_KEEP_HELP + (
                        f". If you change the {destination}, type it again: a stored "
                        "secret is only sent to where it was typed for."
                        if destination
                        else ""
                    )
            elif field.name in stored and field.name not in self.initial:
                self.initial[field.name] = stored[field.name]
        self.secrets_unreadable = False

    def _get_validation_exclusions(self) -> set[str]:
        exclude = super()._get_validation_exclusions()
        # "One active connection per tenant" holds when saving: connection_save deactivates
        # the tenant's other connection in the same transaction (and the admin says so).
        exclude.add("is_active")
        return exclude

    def config_settings(self) -> dict[str, Any]:
        return {
            f.name: self.cleaned_data[f.name]
            for f in self.config_fields
            if not f.secret and self.cleaned_data.get(f.name) not in (None, "")
        }

    def config_secrets(self) -> dict[str, str]:
        """Only the secrets typed in: a blank one keeps its stored value."""
        return {
            f.name: self.cleaned_data[f.name]
            for f in self.config_fields
            if f.secret and self.cleaned_data.get(f.name)
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what every clean() here returns (Django's stubs: maybe None)
        vendor = cleaned.get("vendor", self.instance.vendor if self.instance.pk else None)
        if vendor and vendor != self.vendor_name:
            self.add_error(
                "vendor", "The fields below are for another PSA: reload the page and try again."
            )
            return cleaned
        typed = self.config_secrets()
        instance = self.instance if self.instance.pk is not None else None
        try:
            errors = connection_validate(
                connection=instance,
                vendor=self.vendor_name,
                settings=self.config_settings(),
                secrets=typed,
            )
        except SecretsUnavailable:
            # Lost or rotated key: the only way out is to enter every secret again.
            self.secrets_unreadable = True
            for f in self.config_fields:
                if f.secret and not typed.get(f.name):
                    self.add_error(f.name, SECRET_UNREADABLE)
            return cleaned
        for name, message in errors.items():
            if name in self.errors:
                continue  # already said what is wrong with this field
            self.add_error(name if name in self.fields else None, message)
        return cleaned


def config_form_field(field: ConfigField) -> forms.Field:
    """The form field for one of a vendor's config fields."""
    common: dict[str, Any] = {"label": field.label, "required": field.required}
    if field.secret:
        return forms.CharField(
            **common,
            help_text=f"{field.help_text} {SECRET_NEW_HELP}".strip(),
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        )
    common["help_text"] = field.help_text
    if field.kind == "bool":
        return forms.BooleanField(**{**common, "required": False})
    if field.kind == "int":
        return forms.IntegerField(**common)
    if field.kind == "url":
        # A text field: the vendor's validate_config explains a bad address better than
        # Django's generic "Enter a valid URL".
        return forms.CharField(
            **common, widget=forms.URLInput(attrs={"class": "vURLField", "size": 60})
        )
    return forms.CharField(**common, widget=forms.TextInput(attrs={"class": "vTextField"}))


def default_vendor() -> str:
    return next(iter(BACKENDS))


class PSAUserMappingForm(ScopedModelForm):
    """A staff override of who an e-mail is in the PSA."""

    scope_fields = ("connection",)

    class Meta:
        model = PSAUserMapping
        fields = ["connection", "email", "psa_user_ref", "psa_user_name"]
        labels = {"psa_user_name": "PSA user's name"}

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def psa_user_to_check(self) -> str | None:
        """The PSA user of a new mapping or a changed one (asked of the PSA after saving,
        ``admin/psa_tools.py``; validation never calls the PSA)."""
        if self.instance.pk is not None and not (
            {"connection", "psa_user_ref"} & set(self.changed_data)
        ):
            return None
        return self.cleaned_data.get("psa_user_ref") or None
