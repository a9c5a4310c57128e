"""The admin's "Export CSV" of a history changelist (time entries, configuration history):
exactly the rows the staff member is looking at (filters, search, ordering; every page).

The rows come from the changelist itself (``get_changelist_instance``), so whatever narrows
the changelist (list filters, search, the tenant a staff member may see) narrows the export
the same way, without a second copy of those rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse


def export_csv_view(
    model_admin: Any, request: HttpRequest, respond: Callable[[QuerySet[Any]], HttpResponseBase]
) -> HttpResponseBase:
    """A changelist's "Export CSV" (the admin's ``get_urls``): ``respond`` turns the rows the
    changelist shows into the file (``timelogging.exports``)."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    # The export is the whole filtered list, not the page the link was clicked on (and a
    # page number past the end would make the changelist refuse the parameters).
    query = request.GET.copy()
    query.pop(PAGE_VAR, None)
    request.GET = query  # type: ignore[assignment]  # the changelist reads request.GET
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        # As the changelist itself does with unusable parameters: back to it, flagged.
        opts = model_admin.model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        return HttpResponseRedirect(f"{url}?{ERROR_FLAG}=1")
    # changelist.queryset is get_queryset(request) as the changelist computed it: filtered,
    # searched and in the changelist's order, not yet sliced to a page.
    return respond(changelist.queryset)
