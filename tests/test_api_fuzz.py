"""Schema-driven fuzzing: every operation of the API's own OpenAPI schema, with generated valid
and invalid input, must never answer 5xx and must answer what the schema documents.

schemathesis loads the schema from the app in-process (WSGI: no server, no network) and
generates requests from it: examples, boundary values ("coverage" phase) and random input
(positive and negative). Bounded and derandomized so that it runs in seconds and the same way
on every run; set PIADESK_FUZZ_EXAMPLES to search harder.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Per operation. PIADESK_FUZZ_EXAMPLES=1000 searches harder (minutes, not seconds).
MAX_EXAMPLES = int(os.environ.get("PIADESK_FUZZ_EXAMPLES", "50"))


# Loaded when the module is collected (Django is set up by then; the schema view needs no
# database). (schemathesis.pytest.from_fixture would load it per test, but its lazy loader
# relies on a pytest internal, Node._nodeid, that pytest 9.2 removed.)
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    # Django closes a connection that is not in autocommit mode at the end of each request,
    # which would break the test's transaction: the test client detaches this handler for
    # the same reason, and so does this raw WSGI client.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def history(tenant):
    """Rows for the lists and the export to show (so that their schemas are checked on real
    representations): logged and skipped runs, entries in each delivery state."""
    from django.utils import timezone

    from tests.factories import AutomationRunFactory, TimeEntryFactory
    from timelogging.models import AutomationRun, TimeEntry

    for status in TimeEntry.Status.values:
        TimeEntryFactory(
            run=AutomationRunFactory(tenant=tenant),
            status=status,
            psa_user_ref="jdoe" if status == TimeEntry.Status.POSTED else "",
            posted_at=timezone.now() if status == TimeEntry.Status.POSTED else None,
            error="=1+1 the PSA said no" if status == TimeEntry.Status.FAILED else "",
        )
    for reason in AutomationRun.SkipReason.values:
        AutomationRunFactory(
            tenant=tenant, decision=AutomationRun.Decision.SKIP, skip_reason=reason
        )


@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,  # no .hypothesis/ directory, no replay of past runs' examples
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_api_never_answers_5xx_and_keeps_its_schema(case, api_key, history):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_key}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
