"""The history lists at scale: bounded queries per page whatever its size, no count or DISTINCT
over the whole table, filters whose choices come from small tables, deep pages, and the seed
command that makes a million rows to try them on."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    TenantFactory,
    TimeEntryFactory,
)
from tests.timelogging.admin_support import admin_url
from timelogging.admin import admin_site, paging
from timelogging.models import AutomationRun, PSAUserMapping, Tenant, TimeEntry

pytestmark = pytest.mark.django_db


def _entry(tenant: Tenant, *, client=None, automation=None, created=None, **fields) -> TimeEntry:
    run = AutomationRunFactory.create(
        tenant=tenant,
        client=client or ClientFactory.create(tenant=tenant),
        automation=automation or AutomationFactory.create(tenant=tenant),
    )
    entry = TimeEntryFactory.create(run=run, **fields)
    if created is not None:
        TimeEntry.objects.filter(pk=entry.pk).update(created_at=created)
        AutomationRun.objects.filter(pk=run.pk).update(received_at=created)
    return entry


def _queries(client, url: str, params: dict | None = None) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200, response
    return [q["sql"] for q in ctx.captured_queries]


def _result_pks(client, model, params: dict) -> list[int]:
    response = client.get(admin_url(model, "changelist"), params)
    assert response.status_code == 200
    return [obj.pk for obj in response.context["cl"].result_list]


@pytest.fixture
def history():
    """Two tenants; the first with 30 entries over two clients and automations."""
    acme, other = TenantFactory(name="Acme"), TenantFactory(name="Other")
    clients = [ClientFactory(tenant=acme, name=f"Client {i}") for i in range(2)]
    automations = [AutomationFactory(tenant=acme, name=f"Automation {i}") for i in range(2)]
    now = timezone.now()
    entries = [
        _entry(
            acme,
            client=clients[i % 2],
            automation=automations[i % 2],
            created=now - dt.timedelta(hours=i),
            psa_user_ref="jdoe" if i % 3 == 0 else "asmith",
            status=TimeEntry.Status.POSTED if i % 5 else TimeEntry.Status.FAILED,
            error_class="" if i % 5 else "permanent",
        )
        for i in range(30)
    ]
    others = [_entry(other, psa_user_ref="jdoe") for _ in range(3)]
    return {"acme": acme, "other": other, "clients": clients, "automations": automations}, (
        entries,
        others,
    )


LIST_PARAMS = [
    {},
    {"tenant__id__exact": "{acme}"},
    {"tenant__id__exact": "{acme}", "client": "{client}", "automation": "{automation}"},
    {"created_from": "2000-01-01", "created_to": "2100-01-01", "status__exact": "failed"},
    {"psa_user": "jdoe", "error_class": "permanent"},
    {"q": "run-does-not-exist"},
]


@pytest.mark.parametrize("model", [AutomationRun, TimeEntry])
@pytest.mark.parametrize("params", LIST_PARAMS)
def test_queries_per_page_do_not_depend_on_page_size(admin_client, history, model, params):
    objs, _ = history
    values = {
        "acme": objs["acme"].pk,
        "client": objs["clients"][0].pk,
        "automation": objs["automations"][0].pk,
    }
    params = {k: v.format(**values) for k, v in params.items()}
    if model is AutomationRun:
        params = {
            {"created_from": "received_from", "created_to": "received_to"}.get(k, k): v
            for k, v in params.items()
            if k not in ("status__exact", "psa_user", "error_class")
        }
    model_admin = admin_site._registry[model]
    counts = {}
    for per_page in (25, 200):
        model_admin.list_per_page = per_page
        try:
            counts[per_page] = len(_queries(admin_client, admin_url(model, "changelist"), params))
        finally:
            model_admin.list_per_page = 100
    assert counts[25] == counts[200]


@pytest.mark.parametrize("model", [AutomationRun, TimeEntry])
def test_lists_neither_count_the_table_nor_list_distinct_values(admin_client, history, model):
    objs, _ = history
    params = {"tenant__id__exact": objs["acme"].pk}
    for sql in _queries(admin_client, admin_url(model, "changelist"), params) + _queries(
        admin_client, admin_url(model, "changelist")
    ):
        history_table = re.search(
            r'FROM "timelogging_(timeentry|automationrun)"', sql.split(" WHERE ")[0]
        )
        # DISTINCT over a small table (the tenant's PSA users) is fine; over the history, not.
        assert not ("DISTINCT" in sql.upper() and history_table), sql
        if "COUNT(" in sql.upper():
            # The paginator's count reads at most exact_up_to + 1 rows.
            assert re.search(r"LIMIT \d+", sql), sql


def filter_sidebar(html: str) -> str:
    """The changelist's filter sidebar (nav#changelist-filter) of a page."""
    start = html.index('id="changelist-filter"')
    return html[start : html.index("</nav>", start)]


def test_client_and_automation_filters_offer_the_chosen_tenants_catalogue(admin_client, history):
    objs, _ = history
    ClientFactory(tenant=objs["other"], name="Not Acme's client")
    url = admin_url(TimeEntry, "changelist")
    # The filters only (the list itself names each row's client).
    html = filter_sidebar(admin_client.get(url).content.decode())
    assert "Choose a tenant first." in html
    assert "Client 0" not in html

    page = admin_client.get(url, {"tenant__id__exact": objs["acme"].pk}).content.decode()
    html = filter_sidebar(page)
    assert "Client 0" in html and "Client 1" in html and "Automation 1" in html
    assert "Not Acme&#x27;s client" not in html and "Not Acme's client" not in html
    # The form keeps the tenant when a client is chosen.
    assert f'type="hidden" name="tenant__id__exact" value="{objs["acme"].pk}"' in html


def test_tenant_is_a_drop_down_and_choosing_another_drops_the_client(admin_client, history):
    objs, _ = history
    url = admin_url(AutomationRun, "changelist")
    params = {"tenant__id__exact": objs["acme"].pk, "client": objs["clients"][0].pk}
    html = admin_client.get(url, params).content.decode()
    tenant_form = html[html.index('data-filter-title="tenant"') :]
    tenant_form = tenant_form[: tenant_form.index("</form>")]
    assert f'<option value="{objs["acme"].pk}" selected>Acme</option>' in tenant_form
    assert f'<option value="{objs["other"].pk}">Other</option>' in tenant_form
    assert 'name="client"' not in tenant_form  # another tenant's list has other clients


def test_filters_select_the_right_rows(admin_client, history):
    objs, (entries, others) = history
    acme, client, automation = objs["acme"], objs["clients"][0], objs["automations"][1]
    by_client = _result_pks(admin_client, TimeEntry, {"client": client.pk})
    assert sorted(by_client) == sorted(e.pk for e in entries if e.run.client_id == client.pk)
    by_automation = _result_pks(
        admin_client, AutomationRun, {"automation": automation.pk, "tenant__id__exact": acme.pk}
    )
    assert sorted(by_automation) == sorted(
        e.run.pk for e in entries if e.run.automation_id == automation.pk
    )
    jdoe = _result_pks(admin_client, TimeEntry, {"psa_user": "jdoe"})
    expected = [e.pk for e in entries + others if e.psa_user_ref == "jdoe"]
    assert sorted(jdoe) == sorted(expected)
    failed = _result_pks(admin_client, TimeEntry, {"error_class": "permanent"})
    assert sorted(failed) == sorted(e.pk for e in entries if e.error_class == "permanent")


def test_date_range_is_inclusive_of_both_days(admin_client):
    tenant = TenantFactory()
    today = timezone.localdate()
    midnight = timezone.make_aware(dt.datetime.combine(today, dt.time.min))
    inside = [
        _entry(tenant, created=midnight - dt.timedelta(days=2)),  # first instant of "from"
        _entry(tenant, created=midnight + dt.timedelta(hours=23, minutes=59)),  # end of "to"
    ]
    _entry(tenant, created=midnight - dt.timedelta(days=2, seconds=1))
    _entry(tenant, created=midnight + dt.timedelta(days=1))
    params = {"created_from": (today - dt.timedelta(days=2)).isoformat(), "created_to": today}
    assert sorted(_result_pks(admin_client, TimeEntry, params)) == sorted(e.pk for e in inside)
    runs = _result_pks(
        admin_client,
        AutomationRun,
        {"received_from": params["created_from"], "received_to": today.isoformat()},
    )
    assert sorted(runs) == sorted(e.run.pk for e in inside)


def test_a_bad_date_is_refused_like_any_bad_filter(admin_client):
    url = admin_url(TimeEntry, "changelist")
    response = admin_client.get(url, {"created_from": "yesterday"})
    assert response.status_code == 302 and response.url.endswith("?e=1")
    response = admin_client.get(url, {"client": "contoso"})
    assert response.status_code == 302 and response.url.endswith("?e=1")


def test_error_classes_are_listed_from_code(admin_client, history):
    html = admin_client.get(admin_url(TimeEntry, "changelist")).content.decode()
    for kind in ("retryable", "permanent", "configuration", "unknown_outcome", "throttled"):
        assert f"error_class={kind}" in html


def test_psa_user_suggestions_come_from_the_tenants_mappings(admin_client, history):
    from tests.factories import PSAConnectionFactory

    objs, _ = history
    connection_ = PSAConnectionFactory(tenant=objs["acme"])
    PSAUserMapping.objects.create(
        tenant=objs["acme"],
        connection=connection_,
        email="jane@acme.example",
        psa_user_ref="jbloggs",
        psa_user_name="Jane Bloggs",
    )
    url = admin_url(TimeEntry, "changelist")
    assert "jbloggs" not in admin_client.get(url).content.decode()
    html = admin_client.get(url, {"tenant__id__exact": objs["acme"].pk}).content.decode()
    assert '<option value="jbloggs">Jane Bloggs (jbloggs)</option>' in html


def test_sorting_across_tenants_only_by_the_indexed_date(admin_client, history):
    objs, _ = history
    url = admin_url(TimeEntry, "changelist")
    cl = admin_client.get(url).context["cl"]
    assert list(cl.sortable_by) == ["created_at"]
    cl = admin_client.get(url, {"tenant__id__exact": objs["acme"].pk}).context["cl"]
    assert cl.sortable_by is None or "status_badge" in cl.sortable_by


def test_search_unites_exact_matches_and_keeps_other_filters(admin_client, history):
    objs, (entries, others) = history
    target = entries[3]
    TimeEntry.objects.filter(pk=target.pk).update(psa_entry_id="777")
    AutomationRun.objects.filter(pk=others[0].run.pk).update(ticket_id="777")
    both = _result_pks(admin_client, TimeEntry, {"q": "777"})
    assert sorted(both) == sorted([target.pk, others[0].pk])
    scoped = _result_pks(
        admin_client, TimeEntry, {"q": "777", "tenant__id__exact": objs["acme"].pk}
    )
    assert scoped == [target.pk]


# --- paging -----------------------------------------------------------------------------------
def test_deep_pages_pick_ids_first_and_return_the_same_rows(admin_client, monkeypatch):
    tenant = TenantFactory()
    now = timezone.now()
    entries = [_entry(tenant, created=now - dt.timedelta(minutes=i)) for i in range(9)]
    model_admin = admin_site._registry[TimeEntry]
    monkeypatch.setattr(model_admin, "list_per_page", 2)
    expected = [e.pk for e in entries]  # newest first
    for deferred_from in (0, 10_000):  # deferred join on every page, and never
        monkeypatch.setattr(paging, "DEFERRED_JOIN_FROM_OFFSET", deferred_from)
        pages = [_result_pks(admin_client, TimeEntry, {"p": p}) for p in range(1, 6)]
        assert [pk for page in pages for pk in page] == expected


def test_count_is_exact_up_to_the_cap_then_estimated(admin_client, monkeypatch):
    tenant = TenantFactory()
    for _ in range(6):
        _entry(tenant)
    monkeypatch.setattr(paging.HistoryPaginator, "exact_up_to", 10)
    html = admin_client.get(admin_url(TimeEntry, "changelist")).content.decode()
    assert "6 time entries" in html and "about" not in html

    monkeypatch.setattr(paging.HistoryPaginator, "exact_up_to", 3)
    monkeypatch.setattr(paging, "_planner_estimate", lambda rows: 5000)
    response = admin_client.get(admin_url(TimeEntry, "changelist"))
    assert response.context["cl"].result_count == 5000
    assert "about 5000 time entries" in response.content.decode()

    # Without a planner to ask (SQLite), the count is exact.
    monkeypatch.setattr(paging, "_planner_estimate", lambda rows: None)
    assert admin_client.get(admin_url(TimeEntry, "changelist")).context["cl"].result_count == 6


# --- seed_history -----------------------------------------------------------------------------
SMALL = {
    "entries": 300,
    "tenants": 3,
    "clients_per_tenant": 12,
    "automations_per_tenant": 6,
    "users_per_tenant": 4,
    "days": 30,
    "batch": 100,
    "random_seed": 7,
}


def test_seed_history_makes_a_consistent_history(capsys):
    call_command("seed_history", tenant_prefix="Bench", **SMALL)
    out = capsys.readouterr().out
    assert "Seeded" in out and "300 entries" in out
    tenants = Tenant.objects.filter(name__startswith="Bench ")
    assert tenants.count() == 3
    runs = AutomationRun.objects.filter(tenant__in=tenants)
    entries = TimeEntry.objects.filter(tenant__in=tenants)
    assert entries.count() == 300
    logged = runs.filter(decision="log")
    assert logged.count() == 300
    assert 0.1 < runs.filter(decision="skip").count() / runs.count() < 0.2
    assert not logged.exclude(skip_reason="").exists()
    assert set(runs.filter(decision="skip").values_list("skip_reason", flat=True)) <= set(
        AutomationRun.SkipReason.values
    )
    assert not runs.filter(decision="skip", entry__isnull=False).exists()
    assert set(entries.values_list("status", flat=True)) <= set(TimeEntry.Status.values)
    # Entries belong to their run's tenant, clients and automations too.
    for entry in entries.select_related("run__client", "run__automation")[:50]:
        assert entry.tenant_id == entry.run.tenant_id == entry.run.client.tenant_id
        assert entry.run.automation.tenant_id == entry.tenant_id
        assert entry.end - entry.start == dt.timedelta(minutes=entry.minutes)
    now = timezone.now()
    assert not runs.filter(received_at__gt=now).exists()
    assert not runs.filter(received_at__lt=now - dt.timedelta(days=31)).exists()
    failed = entries.filter(status="failed")
    assert not failed.filter(error_class="").exists()
    assert not entries.filter(status="posted", psa_entry_id="").exists()
    # Ids come from the tables' own sequences: the application inserts after them.
    assert TimeEntryFactory().pk > entries.order_by("-pk").first().pk


def test_seed_history_refuses_a_prefix_in_use(capsys):
    call_command("seed_history", tenant_prefix="Twice", **{**SMALL, "entries": 20})
    with pytest.raises(CommandError, match="tenant-prefix"):
        call_command("seed_history", tenant_prefix="Twice", **{**SMALL, "entries": 20})
    call_command("seed_history", tenant_prefix="Again", **{**SMALL, "entries": 20})
    assert TimeEntry.objects.count() == 40


def test_bench_history_runs_on_a_small_history(capsys, settings):
    """A smoke test (the figures are not checked: a benchmark is not a test). With production's
    HTTPS redirect on, every page is still measured, not its redirect."""
    settings.SECURE_SSL_REDIRECT = True
    call_command("seed_history", tenant_prefix="Bench", **SMALL)
    call_command("bench_history", pages=1, warmup=0, export_entries=50, deep_page=2)
    out = capsys.readouterr().out
    assert "admin runs" in out and "admin entries" in out and "reports" in out
    assert "CSV export" in out
    assert " 500" not in out  # no page failed
    assert "NOT 200" not in out and " 301" not in out
    from django.contrib.auth.models import User

    assert not User.objects.filter(username__startswith="bench-").exists()  # cleaned up
