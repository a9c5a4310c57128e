"""``manage.py bench_history``: server time of the history pages on the data in the database
(seed it first with ``seed_history``), printed as p50 / p95 / max milliseconds and queries per
page. See README.md, "Benchmarks".

A benchmark, not a test: it asserts nothing, and it is not part of the test suite. It creates
a temporary superuser and a temporary read-only API key, and deletes both when done.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import override_settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from timelogging.benchmarks.pages import (
    PageResult,
    PageSpec,
    explain,
    measure,
    measure_stream_memory,
    url,
)
from timelogging.models import AutomationRun, Tenant, TenantAPIKey, TimeEntry

TARGET_MS = 300


def _path(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


class Command(BaseCommand):
    help = "Measure the server time of the history pages (admin, API, reports, export)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pages", type=int, default=20, help="timed requests per page")
        parser.add_argument("--warmup", type=int, default=2)
        parser.add_argument("--deep-page", type=int, default=2000, help="admin page number")
        parser.add_argument("--export-entries", type=int, default=100_000)
        parser.add_argument("--only", default="", help="only pages whose label contains this")
        parser.add_argument(
            "--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest query"
        )

    def handle(self, *args: Any, **o: Any) -> None:
        if not TimeEntry.objects.exists():
            raise CommandError("No time entries: seed first (manage.py seed_history).")
        if settings.DEBUG:
            self.stdout.write(
                self.style.WARNING(
                    "DEBUG is on: every query is also logged; figures are a bit high."
                )
            )
        username = f"bench-{secrets.token_hex(4)}"
        user = get_user_model().objects.create_superuser(username, password=None)
        sizes = self._tenants_by_size()
        tenant = Tenant.objects.get(pk=sizes[0][0])
        median = Tenant.objects.get(pk=sizes[len(sizes) // 2][0])
        key_obj, key = TenantAPIKey.objects.create_key(
            tenant=tenant, name="bench_history (temporary)", read_only=True
        )
        try:
            with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
                self._run(user=user, tenant=tenant, median=median, key=key, o=o)
        finally:
            key_obj.delete()
            user.delete()

    # -- pages -----------------------------------------------------------------------------
    def _tenants_by_size(self) -> list[tuple[int, int]]:
        """(tenant id, entries), largest first. One pass over the tenant index, once: the
        busiest tenant makes the tenant pages (and the API, scoped to one tenant) as slow as
        they get; the median one is what most tenants see."""
        rows = TimeEntry.objects.values("tenant_id").annotate(n=Count("id")).order_by("-n")
        return [(row["tenant_id"], row["n"]) for row in rows]

    def _samples(self, tenant: Tenant) -> dict[str, Any]:
        runs = AutomationRun.objects.filter(tenant=tenant)
        recent_run = runs.order_by("-received_at", "-id").first()
        assert recent_run is not None
        busy_client: Mapping[str, Any] = (
            runs.values("client_id").annotate(n=Count("id")).order_by("-n").first() or {}
        )
        busy_automation: Mapping[str, Any] = (
            runs.values("automation_id").annotate(n=Count("id")).order_by("-n").first() or {}
        )
        entries = TimeEntry.objects.filter(tenant=tenant)
        busy_user: Mapping[str, Any] = (
            entries.exclude(psa_user_ref="")
            .values("psa_user_ref")
            .annotate(n=Count("id"))
            .order_by("-n")
            .first()
            or {}
        )
        posted = TimeEntry.objects.exclude(psa_entry_id="").order_by("-created_at", "-id").first()
        return {
            "tenant": tenant.pk,
            "client": busy_client.get("client_id"),
            "client_key": recent_run.client.key,
            "automation": busy_automation.get("automation_id"),
            "psa_user": busy_user.get("psa_user_ref", ""),
            "ticket": recent_run.ticket_id,
            "run_id": recent_run.run_id,
            "psa_entry_id": posted.psa_entry_id if posted else "",
            "entry": posted,
        }

    def _specs(self, s: dict[str, Any], median: Tenant, deep_page: int) -> list[PageSpec]:
        runs = reverse("admin:timelogging_automationrun_changelist")
        entries = reverse("admin:timelogging_timeentry_changelist")
        today = timezone.localdate()
        week = {"from": (today - dt.timedelta(days=6)).isoformat(), "to": today.isoformat()}
        t = s["tenant"]
        specs = [
            PageSpec("admin runs", "default (all tenants)", runs),
            PageSpec("admin runs", "tenant", url(runs, tenant__id__exact=t)),
            PageSpec("admin runs", "decision=skip", url(runs, decision__exact="skip")),
            PageSpec(
                "admin runs", "skip reason (rare)", url(runs, skip_reason__exact="apply_to_none")
            ),
            PageSpec(
                "admin runs", "tenant + client", url(runs, tenant__id__exact=t, client=s["client"])
            ),
            PageSpec(
                "admin runs",
                "tenant + automation",
                url(runs, tenant__id__exact=t, automation=s["automation"]),
            ),
            PageSpec(
                "admin runs",
                "received past 7 days",
                url(runs, received_from=week["from"], received_to=week["to"]),
            ),
            PageSpec("admin runs", "search ticket", url(runs, q=s["ticket"])),
            PageSpec("admin runs", "search run id", url(runs, q=s["run_id"])),
            PageSpec("admin runs", f"page {deep_page} (OFFSET)", url(runs, p=deep_page)),
            PageSpec("admin entries", "default (all tenants)", entries),
            PageSpec("admin entries", "tenant", url(entries, tenant__id__exact=t)),
            PageSpec("admin entries", "status=failed", url(entries, status__exact="failed")),
            PageSpec(
                "admin entries", "status=retry_wait", url(entries, status__exact="retry_wait")
            ),
            PageSpec(
                "admin entries", "error class (rare)", url(entries, error_class="configuration")
            ),
            PageSpec(
                "admin entries",
                "tenant + client",
                url(entries, tenant__id__exact=t, client=s["client"]),
            ),
            PageSpec(
                "admin entries", "automation (no tenant)", url(entries, automation=s["automation"])
            ),
            PageSpec("admin entries", "PSA user", url(entries, psa_user=s["psa_user"])),
            PageSpec(
                "admin entries",
                "created past 7 days",
                url(entries, created_from=week["from"], created_to=week["to"]),
            ),
            PageSpec("admin entries", "search ticket", url(entries, q=s["ticket"])),
            PageSpec("admin entries", "search PSA entry id", url(entries, q=s["psa_entry_id"])),
            PageSpec("admin entries", f"page {deep_page} (OFFSET)", url(entries, p=deep_page)),
        ]
        if s["entry"] is not None:
            change = reverse("admin:timelogging_timeentry_change", args=[s["entry"].pk])
            specs.append(PageSpec("admin entries", "one entry (detail)", change))
        queue = _path("admin:delivery_queue")
        if queue:
            specs.append(PageSpec("admin entries", "delivery queue", queue))
        reports = _path("admin:reports")
        if reports:
            specs += [
                PageSpec("reports", "tenant, 12 weeks", url(reports, tenant=t)),
                PageSpec("reports", "tenant, 12 months", url(reports, tenant=t, period="month")),
                PageSpec("reports", "median tenant, 12 weeks", url(reports, tenant=median.pk)),
                PageSpec(
                    "reports",
                    "median tenant, 12 months",
                    url(reports, tenant=median.pk, period="month"),
                ),
            ]
        api_entries = _path("time-entry-list")
        if api_entries:
            specs += [
                PageSpec("API (tenant key)", "time-entries", api_entries),
                PageSpec(
                    "API (tenant key)",
                    "time-entries status=failed",
                    url(api_entries, status="failed"),
                ),
                PageSpec(
                    "API (tenant key)",
                    "time-entries client",
                    url(api_entries, client=s["client_key"]),
                ),
                PageSpec(
                    "API (tenant key)",
                    "time-entries page_size=500",
                    url(api_entries, page_size=500),
                ),
            ]
        api_runs = _path("automation-run-list")
        if api_runs:
            specs += [
                PageSpec("API (tenant key)", "automation-runs", api_runs),
                PageSpec(
                    "API (tenant key)",
                    "automation-runs decision=skip",
                    url(api_runs, decision="skip"),
                ),
            ]
        return specs

    def _run(
        self, *, user: Any, tenant: Tenant, median: Tenant, key: str, o: dict[str, Any]
    ) -> None:
        admin = Client()
        admin.force_login(user)
        api = Client()
        api_headers = {"Authorization": f"Bearer {key}"}
        samples = self._samples(tenant)
        entries_total = TimeEntry.objects.count()  # once, for the header only
        runs_total = AutomationRun.objects.count()
        self.stdout.write(
            f"{connection.vendor}: {runs_total:,} runs, {entries_total:,} entries; busiest "
            f"tenant “{tenant}” ({TimeEntry.objects.filter(tenant=tenant).count():,} entries), "
            f"median “{median}” ({TimeEntry.objects.filter(tenant=median).count():,}). "
            f"{o['pages']} timed requests per page after {o['warmup']} warm-up."
        )
        specs = [s for s in self._specs(samples, median, o["deep_page"]) if o["only"] in s.label]
        if o["only"] == "" and _path("time-entry-list"):
            specs += self._api_deep_specs(api, api_headers)
        results: list[PageResult] = []
        group = ""
        for spec in specs:
            client, headers = (api, api_headers) if spec.group.startswith("API") else (admin, {})
            result = measure(client, spec, n=o["pages"], warmup=o["warmup"], headers=headers)
            results.append(result)
            if spec.group != group:
                group = spec.group
                self.stdout.write(f"\n{group}")
                self.stdout.write(
                    f"  {'page':<34} {'p50':>7} {'p95':>7} {'max':>7} {'queries':>7}  status"
                )
            flag = "" if result.p95 <= TARGET_MS else f"  > {TARGET_MS} ms"
            if result.status != 200:
                flag += "  NOT 200: not measured"
            self.stdout.write(
                f"  {spec.label:<34} {result.p50:7.1f} {result.p95:7.1f} {result.worst:7.1f} "
                f"{result.queries:7d}  {result.status}{flag}"
            )
            if o["explain"]:
                self.stdout.write(f"    slowest query {result.slowest_ms:.1f} ms:")
                self.stdout.write("    " + explain(result.slowest_sql).replace("\n", "\n    "))
        if o["only"] in "CSV export":
            self._export(api, api_headers, tenant, o["export_entries"])
        slow = [r for r in results if r.p95 > TARGET_MS or r.status != 200]
        self.stdout.write(
            f"\n{len(results) - len(slow)}/{len(results)} pages answered 200 within "
            f"{TARGET_MS} ms at p95."
        )

    def _api_deep_specs(self, api: Client, headers: dict[str, str]) -> list[PageSpec]:
        """The API's 20th page, reached by following ``next`` (a cursor, not an offset)."""
        path = _path("time-entry-list")
        assert path is not None
        link: str | None = url(path, page_size=100)
        for _ in range(19):
            if link is None:
                break
            answer = api.get(link, headers=headers, secure=True)
            link = answer.json().get("next") if answer.status_code == 200 else None
        if link is None:
            return []
        return [PageSpec("API (tenant key)", "time-entries page 20 (cursor)", link)]

    def _export(self, api: Client, headers: dict[str, str], tenant: Tenant, n: int) -> None:
        path = _path("time-entry-export")
        self.stdout.write("\nCSV export")
        if path is None:
            self.stdout.write("  /api/v1/time-entries/export.csv is not there yet: pending.")
            return
        # The instant from which the tenant has about ``n`` entries (fewer if it has fewer).
        entries = TimeEntry.objects.filter(tenant=tenant).order_by("-created_at", "-id")
        boundary = entries.values_list("created_at", flat=True)[n - 1 : n].first()
        params = {"created_after": boundary.isoformat()} if boundary else {}
        spec = PageSpec("export", f"API export of {tenant}", url(path, **params))
        result = measure_stream_memory(api, spec, headers=headers)
        mib = 1024 * 1024
        self.stdout.write(
            f"  {result.rows:,} entries, {result.size_bytes / mib:.1f} MiB in "
            f"{result.seconds:.1f} s (status {result.status}); peak Python allocations "
            f"{result.traced_peak_bytes / mib:.1f} MiB (tracemalloc), peak RSS growth "
            f"{result.maxrss_delta_bytes / mib:.1f} MiB"
        )
        if result.rows < n:
            self.stdout.write(
                f"  (the busiest tenant has fewer than {n:,} entries; seed with a larger "
                "--largest-tenant-share to export more through the tenant-scoped API)"
            )
