"""Admin pieces that talk to a tenant's PSA while staff wait: the user picker's JSON and its
widget wiring, and the wording of a connection test.

The views stay thin: the look-ups are services (``services.psa_users``, ``connection_test``).
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse

from psa.base import PSAError
from timelogging.admin.base import ModelAdminMixinBase
from timelogging.models import PSAConnection
from timelogging.services.connections import ConnectionTestResult, lookup_error_message
from timelogging.services.psa_users import psa_user_check, psa_users_search

logger = logging.getLogger(__name__)

PICKER_JS = "timelogging/psa_user_picker.js"
# Placeholder in the URL template the picker fills with the chosen connection's id (the user
# mapping add page, where the connection is chosen on the page).
CONNECTION_PLACEHOLDER = "__connection__"


def json_error(message: str, *, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def psa_users_response(request: HttpRequest, *, connection: PSAConnection | None) -> JsonResponse:
    """``[{"ref", "name", "email"}]`` of the connection's active users matching ``?q=``.

    A PSA that cannot be read is a 502 with the PSA's own words: the admin page shows them and
    staff can still type the user's id by hand.
    """
    if request.method != "GET":
        return json_error("Use GET.", status=405)
    if connection is None:
        return json_error(
            "The tenant has no active PSA connection: add one under PSA connections, or type "
            "the user's id.",
            status=409,
        )
    try:
        users = psa_users_search(connection=connection, search=request.GET.get("q", ""))
    except PSAError as exc:
        return json_error(lookup_error_message(connection=connection, error=exc), status=502)
    except Exception:
        # A bug in a backend: the page still gets JSON it can show, the log gets the trace.
        logger.exception("listing the PSA users of connection %s failed", connection.pk)
        return json_error("Listing the PSA's users failed unexpectedly.", status=502)
    return JsonResponse(
        [{"ref": u.ref, "name": u.name, "email": u.email} for u in users], safe=False
    )


class PSAUserCheckAdminMixin(ModelAdminMixinBase):
    """Makes the PSA look-up of a picked user (``forms.check_psa_user``) before the admin's
    transaction opens, and hands its outcome to the form.

    Django's ``changeform_view`` validates and saves in one transaction. A PSA request made
    during validation would keep what the request budget wrote locked (its row on PostgreSQL,
    the database's write lock on SQLite) for as long as the PSA takes to answer, stalling the
    workers posting for the same connection. Subclasses say which user the POST asks to check
    (``psa_user_to_check``); should it differ from what the form decides, the form asks the
    PSA itself, so the outcome is the same either way.
    """

    def psa_user_to_check(
        self, request: HttpRequest, object_id: str | None
    ) -> tuple[PSAConnection, str] | None:
        """The connection and ref the form will check for this POST, or None."""
        raise NotImplementedError

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST":
            target = self.psa_user_to_check(request, object_id)
            if target is not None:
                connection, ref = target
                outcome = psa_user_check(connection=connection, ref=ref)
                checks = {(connection.pk, ref): outcome}
                request.psa_user_checks = checks  # type: ignore[attr-defined]  # read by the form
        return super().changeform_view(
            request, object_id, form_url, extra_context
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kw: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kw)
        checks = getattr(request, "psa_user_checks", None)
        if checks:
            form = type(form.__name__, (form,), {"psa_user_checks": checks})
        return form


def attach_picker(
    form: forms.BaseForm,
    *,
    ref_field: str,
    name_field: str,
    url: str = "",
    url_template: str = "",
    connection_field: str = "",
) -> None:
    """Mark ``ref_field``'s input for ``psa_user_picker.js``: where to search (``url``, or
    ``url_template`` with the id of the ``connection_field`` select) and which input takes the
    name. Without JavaScript the two text inputs stay as they are."""
    if ref_field not in form.fields or name_field not in form.fields:
        return
    attrs = {"data-psa-user-name-field": form[name_field].auto_id}
    if url:
        attrs["data-psa-users-url"] = url
    elif url_template and connection_field in form.fields:
        attrs["data-psa-users-url-template"] = url_template
        attrs["data-psa-connection-field"] = form[connection_field].auto_id
    else:
        return
    # The form's fields are deep copies made for this form: changing them affects this page.
    form.fields[ref_field].widget.attrs.update(attrs)


def connection_test_message(connection: PSAConnection, result: ConnectionTestResult) -> str:
    if result.ok:
        return f"“{connection}”: {result.message}"
    return f"Test of “{connection}” failed: {result.message}"
