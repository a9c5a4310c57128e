"""An oversized request body under ``/api/`` is a JSON ``413`` that says the limit.

Django refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` when it is read (``RequestDataTooBig``,
a ``SuspiciousOperation``) with its HTML 400 page, which an API client cannot parse and which
does not say what is wrong. Checked here from ``Content-Length`` before any view reads it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from timelogging.api.errors import API_PREFIX


class APIBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.path.startswith(API_PREFIX):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return JsonResponse(
                    {
                        "detail": f"The request body is {length:,} bytes; the most accepted "
                        f"is {limit:,} bytes."
                    },
                    status=413,
                )
        return self.get_response(request)
