"""The ingest request costs a fixed number of queries, whatever the tenant's size."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AutomationFactory, ClientFactory, TagFactory
from timelogging.models import Tag

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _key_read_every_time(settings):
    # Every count below includes reading the API key; the last test counts it kept.
    settings.PIADESK_API_CACHE_SECONDS = 0


def grow(tenant, n):
    tags = TagFactory.create_batch(n, tenant=tenant)
    tenant.apply_to = "tags"
    tenant.save()
    tenant.apply_tags.set(tags)
    for i in range(n):
        ClientFactory(tenant=tenant, tags=tags[: i + 1])
        AutomationFactory(tenant=tenant)
    return tags


def count_queries(api, payload):
    with CaptureQueriesContext(connection) as ctx:
        response = api.generic(
            "POST", "/api/v1/automation-runs/", json.dumps(payload), content_type="application/json"
        )
    assert response.status_code in (200, 201), response.content
    return len(ctx.captured_queries)


@pytest.mark.parametrize("existing", [True, False], ids=["known keys", "new keys"])
def test_ingest_query_count_does_not_grow_with_the_tenant(api, tenant, run_payload, existing):
    counts = []
    for size, run_id in ((2, "small"), (40, "large")):
        tags = grow(tenant, size)
        key = f"c-{size}"
        if existing:
            ClientFactory(tenant=tenant, key=key, tags=tags)
            AutomationFactory(tenant=tenant, key=f"a-{size}")
        counts.append(
            count_queries(
                api,
                run_payload(run_id=run_id, client={"key": key}, automation={"key": f"a-{size}"}),
            )
        )
    assert counts[0] == counts[1]
    assert Tag.objects.filter(tenant=tenant).count() == 42


def test_known_client_logged_by_tag_fits_the_budget(api, tenant, run_payload, settings):
    tags = grow(tenant, 10)
    ClientFactory(tenant=tenant, key="contoso", tags=tags[:1])
    AutomationFactory(tenant=tenant, key="reset-password", name="Reset password")
    contoso = {"key": "contoso", "name": "Contoso Ltd"}
    # The first ingest after a change: auth, the tenant's config_version, the tenant, the
    # client (+ its name update, which replaces config_version), its scope tags, the
    # automation, the run inserted unless reported (no look-up first), the entry, the task,
    # plus the transaction's savepoint/commit statements.
    assert count_queries(api, run_payload(run_id="cold", client=contoso)) <= 13
    count_queries(api, run_payload(run_id="renamed", client=contoso))  # reads them again
    # Then the process knows the tenant, the client and the automation: auth,
    # config_version, run, entry, task, and the transaction's statements.
    assert count_queries(api, run_payload(run_id="warm", client=contoso)) <= 7
    # And with the key kept too (PIADESK_API_CACHE_SECONDS, default 5): the statements of the
    # floor (bench/floor: a read, then the run, entry and task in one transaction).
    settings.PIADESK_API_CACHE_SECONDS = 5
    count_queries(api, run_payload(run_id="key-kept", client=contoso))
    assert count_queries(api, run_payload(run_id="all-kept", client=contoso)) <= 6


def test_retry_is_cheap(api, run_payload):
    count_queries(api, run_payload())
    # auth, config_version, the insert that finds the run reported, the existing run with its
    # entry, and the transaction's statements: a retry is not looked up before the insert
    # (first receipts are the common case). The first retry also reads the client and the
    # automation that the first receipt created (a row created is not kept: its transaction
    # could have rolled back).
    assert count_queries(api, run_payload()) <= 8
    assert count_queries(api, run_payload()) <= 6


def test_the_ingest_enqueues_with_its_one_insert_broker_under_the_projects_broker():
    """The project configures its own ORM broker (piadesk/broker.py, for the dequeue); the
    ingest's plain-INSERT enqueue must still be used with it, not silently dropped."""
    from django_q.conf import Conf

    from timelogging.services.ingest import _ingest_broker, _InTransactionORMBroker

    assert Conf.BROKER_CLASS == "piadesk.broker.OrmBroker"
    assert isinstance(_ingest_broker(), _InTransactionORMBroker)
