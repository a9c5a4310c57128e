"""The ingest request costs a fixed number of queries, whatever the tenant's size."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AutomationFactory, ClientFactory, TagFactory
from timelogging.models import Tag

pytestmark = pytest.mark.django_db


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


def test_known_client_logged_by_tag_fits_the_budget(api, tenant, run_payload):
    tags = grow(tenant, 10)
    ClientFactory(tenant=tenant, key="contoso", tags=tags[:1])
    AutomationFactory(tenant=tenant, key="reset-password", name="Reset password")
    # auth, client (+ its name update), automation, scope tags, the run inserted unless
    # reported (no look-up first), entry insert, task insert, plus the transaction's
    # savepoint/commit statements.
    assert count_queries(api, run_payload(client={"key": "contoso", "name": "Contoso Ltd"})) <= 10


def test_retry_is_cheap(api, run_payload):
    count_queries(api, run_payload())
    # auth, client, automation, the insert that finds the run reported, the existing run with
    # its entry, plus the transaction's statements: a retry is not looked up before the insert
    # (first receipts are the common case), so it costs the first receipt's reads.
    assert count_queries(api, run_payload()) <= 7
