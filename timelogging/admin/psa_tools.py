"""Admin pieces that talk to a tenant's PSA while staff wait: the user picker's JSON and its
widget wiring, and the wording of a connection test and of a connection's state.

The views stay thin: the look-ups are services (``services.psa_users``, ``connection_test``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, JsonResponse
from django.utils import formats, timezone

from psa.base import NotFoundError, PSAError, PSAUser
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


def psa_user_check_after_save(
    model_admin: Any,
    request: HttpRequest,
    *,
    connection: PSAConnection | None,
    ref: str | None,
    found: Callable[[PSAUser], None] | None = None,
) -> None:
    """Ask the PSA about a user just saved (the specified user, a mapping's user), once the
    save has committed (``TenantScopedModelAdmin.after_save``), and tell staff what it said.

    Never in form validation: the admin validates and saves in one transaction, and a PSA
    request made inside it would keep what it locked (the request budget's row on
    PostgreSQL, the database's write lock on SQLite) for as long as the PSA takes to answer,
    stalling the workers posting for the same connection. The picker only offers users the
    PSA listed and the preview shows who was chosen; this warns when a user typed by hand is
    unknown, or when the PSA could not be asked. ``found`` receives the PSA's user.
    """
    if connection is None or not ref:
        return

    def check() -> None:
        vendor = connection.vendor_label
        outcome = psa_user_check(connection=connection, ref=ref)
        if isinstance(outcome, NotFoundError):
            model_admin.message_user(
                request,
                f"Saved, but {vendor} has no user “{ref}”: entries logged as this user will "
                f"fail until you choose one of the {vendor} users (the picker lists them).",
                messages.WARNING,
            )
        elif isinstance(outcome, PSAError):
            said = lookup_error_message(connection=connection, error=outcome)
            model_admin.message_user(
                request,
                f"{vendor} could not be asked whether user “{ref}” exists, so it was saved "
                f"without that check. {said}",
                messages.WARNING,
            )
        elif found is not None:
            found(outcome)

    model_admin.after_save(request, check)


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


def connection_state(connection: PSAConnection) -> tuple[str, str]:
    """``(kind, words)`` of a connection as staff see it in the list, on its page and in the
    tenant's panel: kind is "paused", "failed" (its last test of the stored settings failed,
    and no entry was posted since), "inactive" or "healthy"; the words say when and why."""
    test = _last_test_words(connection)
    if connection.paused_at is not None:
        words = f"Paused since {_when(connection.paused_at)}: {connection.pause_reason}"
        return "paused", f"{words} {test}" if test else words
    if connection.last_test_result == PSAConnection.TestResult.FAILED:
        return "failed", test
    if not connection.is_active:
        return "inactive", "Inactive"
    return "healthy", f"Healthy ({test})" if test else "Healthy"


def _last_test_words(connection: PSAConnection) -> str:
    result, at = connection.last_test_result, connection.last_test_at
    if at is None:
        return ""
    if result == PSAConnection.TestResult.FAILED:
        return f"Last test failed {_when(at)}: {connection.last_test_message}"
    if result == PSAConnection.TestResult.POSTED_SINCE:
        return f"an entry was posted after the test that failed {_when(at)}"
    if connection.paused_at is not None:
        return f"Last test passed {_when(at)}."
    return f"last test passed {_when(at)}"


def _when(moment: Any) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
