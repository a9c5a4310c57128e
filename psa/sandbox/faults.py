"""Fault injection for the sandbox PSAs: 5xx, 429 with Retry-After, timeouts, latency, and
responses lost after the entry was stored — the failures piadesk's delivery must survive.

Configured per vendor in ``SandboxFaults`` (``manage.py sandbox_faults``, or
``POST /sandbox/<vendor>/faults`` with JSON). The middleware is installed only when
``PIADESK_SANDBOX`` is on and acts only on the vendors' API paths.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from psa.sandbox.models import SandboxFaults, Vendor

logger = logging.getLogger(__name__)

# The path (after /sandbox/<vendor>/) of each vendor's "create a time entry" call.
CREATE_SUFFIXES: dict[str, str] = {
    Vendor.CONNECTWISE: "/time/entries",
    Vendor.AUTOTASK: "/TimeEntries",
    Vendor.HALOPSA: "/api/Actions",
}
# Sandbox conveniences that are not part of a vendor's API and never fail.
EXEMPT = ("entries.json", "faults")


def _vendor_of(path: str) -> str | None:
    parts = path.split("/", 3)  # ["", "sandbox", vendor, rest]
    if len(parts) < 4 or parts[1] != "sandbox" or parts[2] not in Vendor.values:
        return None
    if parts[3].split("/", 1)[0] in EXEMPT:
        return None
    return parts[2]


def _is_create(vendor: str, request: HttpRequest) -> bool:
    return request.method == "POST" and request.path.rstrip("/").endswith(CREATE_SUFFIXES[vendor])


def _drop_connection(request: HttpRequest) -> bool:
    """Close the client's socket without an answer (Django's dev and live servers)."""
    stream = request.META.get("wsgi.input")
    # Django's LimitedStream keeps only the bound read method of the socket file it wraps.
    stream = getattr(getattr(stream, "_read", None), "__self__", stream)
    for attr in ("raw", "_sock"):  # BufferedReader → SocketIO → socket
        stream = getattr(stream, attr, stream)
    sock = stream if isinstance(stream, socket.socket) else getattr(stream, "_sock", None)
    if not isinstance(sock, socket.socket):
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    return True


class FaultInjectionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        vendor = _vendor_of(request.path)
        faults = SandboxFaults.objects.filter(vendor=vendor).first() if vendor else None
        if vendor is None or faults is None:
            return self.get_response(request)
        roll = random.random
        if faults.latency_ms_max:
            time.sleep(random.uniform(faults.latency_ms_min, faults.latency_ms_max) / 1000)
        if roll() < faults.throttle_rate:
            response: HttpResponse = JsonResponse(
                {"message": "Too many requests (sandbox fault)"}, status=429
            )
            response["Retry-After"] = str(faults.retry_after_seconds)
            return response
        if roll() < faults.error_rate:
            status = random.choice([500, 502, 503])
            return JsonResponse({"message": f"Injected {status} (sandbox fault)"}, status=status)
        if roll() < faults.timeout_rate:
            time.sleep(faults.timeout_seconds)  # the client gives up before this answer
            return JsonResponse({"message": "Late answer (sandbox fault)"}, status=504)
        response = self.get_response(request)
        if _is_create(vendor, request) and 200 <= response.status_code < 300:
            if roll() < faults.drop_after_store_rate:
                logger.info("sandbox fault: dropping the answer to a stored %s entry", vendor)
                if not _drop_connection(request):
                    time.sleep(faults.timeout_seconds)  # no socket to close: answer too late
                return HttpResponse(status=502)
            if roll() < faults.error_after_store_rate:
                return JsonResponse({"message": "Injected 502 after store"}, status=502)
        return response
