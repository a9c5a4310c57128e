"""One error shape for the API: ``{"detail": ..., "errors": {field: [reasons]}}``.

DRF's default already answers validation errors with 400 and field messages; this handler
keeps that and adds a top-level ``detail`` so every error has one. An integrity error is not
turned into "retry it": the one known race (two submissions of a run_id) is answered 409 by
the view; anything else is a bug, a 500 that Django logs.
Django's own 404 and 500 pages (``handler404``, ``handler500``) answer JSON under ``/api/``.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)
API_PREFIX = "/api/"


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if response.status_code == 400 and isinstance(response.data, dict):
        if "detail" not in response.data:
            response.data = {"detail": "Invalid input.", "errors": response.data}
    elif response.status_code == 400 and isinstance(response.data, list):
        response.data = {"detail": "Invalid input.", "errors": {"non_field_errors": response.data}}
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for URLs that match no route (``handler404``): JSON under ``/api/``.

    DRF answers a missing object in JSON, but a URL that no route matches (a run id with a
    character the route refuses, a typo in the path) never reaches DRF: an API client would get
    Django's HTML page, which it cannot parse.
    """
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 (``handler500``): JSON under ``/api/``, the HTML page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)
