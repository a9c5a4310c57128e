"""The vendor-neutral page at ``/sandbox/``: what every sandbox PSA received, for a human."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from psa.sandbox.models import SandboxAccount, SandboxTicket, SandboxTimeEntry


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
    }
    return render(
        request,
        "sandbox/index.html",
        {"accounts": accounts, "site_urls": site_urls},
    )
