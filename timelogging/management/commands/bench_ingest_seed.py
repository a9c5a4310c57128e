"""``manage.py bench_ingest_seed``: the tenant that ``make bench`` posts runs for, and its key.

Time logging on for all clients (every run is logged: a run, an entry and a queued post, as
the floor does), logged as the user who started the automation. Prints the API key only.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from timelogging.models import Tenant, TenantAPIKey


class Command(BaseCommand):
    help = "Create a tenant for the ingest benchmark and print its API key."

    def handle(self, *args: Any, **o: Any) -> None:
        tenant = Tenant.objects.create(
            name=f"Bench ingest {timezone.now():%Y%m%d%H%M%S%f}",
            time_logging_enabled=True,
            apply_to=Tenant.ApplyTo.ALL,
            log_as=Tenant.LogAs.STARTER,
        )
        _, key = TenantAPIKey.objects.create_key(tenant=tenant, name="make bench")
        self.stdout.write(key)
