"""Middleware for the staff site only: passed by for the API (``/api/``).

The API is called by services with a bearer key: it has no session, no signed-in user, no
flash messages (``tests/timelogging/test_api_lean_middleware.py``; DRF sets ``request.user``
from the key). These middleware did that work on every request they saw; for the ingest, the
busiest path, for nothing. The configuration history's context (who, from where) is entered
for the API only around a change it makes (the address of an automation first reported, see
``AuditlogMiddleware``). CSRF stays on for every request (the API's views are CSRF-exempt by
DRF), and so do the ones the API needs: metrics, the 503 of a database down, the body limit,
security headers. Django's system checks accept these subclasses in place of its own.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from auditlog.cid import set_cid
from auditlog.context import set_extra_data
from auditlog.middleware import AuditlogMiddleware as AuditlogDjangoMiddleware
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse

from timelogging import audit
from timelogging.api.errors import API_PREFIX


class SiteOnlyMixin:
    get_response: Any

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PREFIX):
            response: HttpResponse = self.get_response(request)
            return response
        return super().__call__(request)  # type: ignore[misc]  # the middleware mixed with


class SessionMiddleware(SiteOnlyMixin, DjangoSessionMiddleware):
    pass


class AuthenticationMiddleware(SiteOnlyMixin, DjangoAuthenticationMiddleware):
    """Signed-in users are the site's (it needs the session); the API's caller is a key."""


class MessageMiddleware(SiteOnlyMixin, DjangoMessageMiddleware):
    pass


class AuditlogMiddleware(AuditlogDjangoMiddleware):
    """django-auditlog's context of the configuration history (who, from where): entered for
    every request of the staff site; for the API only around a change that it makes
    (``timelogging.audit.api_changes``), since nearly no API request makes one."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            response: HttpResponse = super().__call__(request)
            return response
        token = audit.api_request_context.set(partial(self._context, request))
        try:
            response = self.get_response(request)
        finally:
            audit.api_request_context.reset(token)
        return response

    def _context(self, request: HttpRequest) -> Any:
        set_cid(request)
        return set_extra_data(context_data=self.get_extra_data(request))
