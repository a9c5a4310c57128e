"""The vendor-neutral page at ``/sandbox/``: what every sandbox PSA received, for a human."""

from __future__ import annotations

import json

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from psa.sandbox.models import (
    SandboxAccount,
    SandboxFaults,
    SandboxTicket,
    SandboxTimeEntry,
    Vendor,
)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    newest_first = SandboxTimeEntry.objects.select_related("member").order_by("-received_at", "-id")
    tickets = SandboxTicket.objects.select_related("owner").prefetch_related(
        Prefetch("time_entries", queryset=newest_first)
    )
    accounts = SandboxAccount.objects.order_by("vendor", "company_id").prefetch_related(
        "members", Prefetch("tickets", queryset=tickets.order_by("ticket_id"))
    )
    site_urls = {
        "connectwise": request.build_absolute_uri(reverse("sandbox:index") + "connectwise"),
        "autotask": request.build_absolute_uri(reverse("sandbox:index") + "autotask/"),
        "halopsa": request.build_absolute_uri(reverse("sandbox:index") + "halopsa"),
    }
    return render(
        request,
        "sandbox/index.html",
        {"accounts": accounts, "site_urls": site_urls},
    )


def ticket_page(vendor: str, ticket_id: str | None) -> HttpResponse:
    """The sandbox's stand-in for a vendor's ticket page (the links on piadesk's entry pages):
    this page, at the ticket."""
    anchor = f"#{vendor}-ticket-{ticket_id}" if ticket_id and ticket_id.isdigit() else ""
    return redirect(reverse("sandbox:index") + anchor)


@require_GET
def autotask_execute_command(request: HttpRequest) -> HttpResponse:
    """Autotask's ExecuteCommand (``Code=OpenTicketDetail&TicketID=...``) on the zone's web
    address, which is ``/sandbox/`` in the sandbox."""
    return ticket_page("autotask", request.GET.get("TicketID"))


FAULT_FIELDS = (
    "error_rate",
    "throttle_rate",
    "retry_after_seconds",
    "timeout_rate",
    "timeout_seconds",
    "latency_ms_min",
    "latency_ms_max",
    "drop_after_store_rate",
    "error_after_store_rate",
)


@csrf_exempt
@require_http_methods(["GET", "POST", "DELETE"])
def faults(request: HttpRequest, vendor: str) -> JsonResponse:
    """GET: the vendor's injected faults; POST (JSON): set some; DELETE: none (see faults.py)."""
    if vendor not in Vendor.values:
        return JsonResponse({"message": f"Unknown sandbox vendor {vendor!r}"}, status=404)
    config, _ = SandboxFaults.objects.get_or_create(vendor=vendor)
    if request.method == "DELETE":
        config.delete()
        config = SandboxFaults(vendor=vendor)
    elif request.method == "POST":
        try:
            body = json.loads(request.body or b"{}")
            for name, value in body.items():
                if name not in FAULT_FIELDS:
                    raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_FIELDS)}")
                value = float(value)
                if name.endswith("_rate") and not 0 <= value <= 1:
                    raise ValueError(f"{name} must be between 0 and 1")
                if value < 0:
                    raise ValueError(f"{name} must not be negative")
                setattr(config, name, value)
        except (ValueError, TypeError, AttributeError) as exc:
            return JsonResponse({"message": str(exc)}, status=400)
        config.save()
    return JsonResponse({name: getattr(config, name) for name in FAULT_FIELDS})
