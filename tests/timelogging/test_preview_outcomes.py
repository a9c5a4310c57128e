"""The settings page's preview says when a run that the settings log would still not reach the
PSA (issue 11): a PSA user or a ticket the PSA does not know is "would NOT be logged", in the
warning or error colour, naming what is missing and the fix; never "Would be logged" in green.

Every vendor's not-found answers, through the backend interface: each vendor is mocked at the
network edge as its API answers (the contract's ``Vendor`` descriptions,
tests/psa/test_backend_contract.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import responses
from django.template.loader import render_to_string

from tests.factories import PSAConnectionFactory
from tests.psa.test_backend_contract import VENDORS, Person, Vendor
from timelogging.services.decision import SettingsInForce
from timelogging.services.delivery import connection_pause
from timelogging.services.preview import PreviewOutcome, PreviewRun, settings_preview

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
JOHN = Person(1, "John", "Doe", "john.doe@demo-msp.example")
TICKET = "1001"


@pytest.fixture(params=VENDORS, ids=lambda v: v.backend.vendor)
def vendor(request) -> Vendor:
    return request.param


@pytest.fixture
def connection(tenant, vendor):
    return PSAConnectionFactory(
        tenant=tenant,
        vendor=vendor.backend.vendor,
        settings=dict(vendor.valid_settings),
        secrets=dict(vendor.valid_secrets),
    )


@pytest.fixture
def psa(vendor):
    """The vendor mocked at the edge, its discovery answered; every answer must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        vendor.discovery(mock)
        yield mock


def preview(tenant, log_as: str, *, specified: str = "", ticket: str = TICKET):
    settings = SettingsInForce(
        enabled=True, apply_to="all", apply_tag_ids=frozenset(), log_as=log_as
    )
    run = PreviewRun(
        client_tag_ids=frozenset(),
        automation_name="Reset password",
        automation_log_time=True,
        automation_minutes=None,
        started_by=JOHN.email,
        ticket_id=ticket,
        duration=dt.timedelta(minutes=5),
    )
    return settings_preview(
        tenant=tenant,
        settings=settings,
        specified_ref=specified,
        specified_name="Time Logging" if specified else "",
        run=run,
        now=NOW,
    )


def html(answer) -> str:
    return render_to_string(
        "admin/timelogging/tenant/preview_result.html", {"preview": answer, "problems": []}
    )


def assert_not_logged(answer, outcome: str) -> str:
    assert answer.log is True  # the settings log the run; the PSA would not take it
    assert answer.outcome == outcome
    page = html(answer)
    assert f'class="preview-answer preview-{outcome}"' in page
    assert "Would be logged" not in page
    assert answer.headline.startswith("Would NOT be logged")
    assert answer.headline in page
    return page


def test_a_starter_the_psa_does_not_know_would_fail(tenant, vendor, connection, psa):
    vendor.search_answer(psa, [], found=None)
    vendor.ticket_answer(psa, TICKET, None)
    answer = preview(tenant, "starter")
    page = assert_not_logged(answer, PreviewOutcome.FAILED)
    assert answer.user is None
    assert JOHN.email in answer.reason
    assert "add a PSA user mapping" in answer.reason  # the fix
    assert answer.reason in page


def test_a_ticket_the_psa_does_not_know_would_fail(tenant, vendor, connection, psa):
    vendor.user_answer(psa, JOHN)
    vendor.ticket_missing(psa, TICKET)
    answer = preview(tenant, "specified", specified=vendor.ref(JOHN))
    assert_not_logged(answer, PreviewOutcome.FAILED)
    assert answer.user is not None  # the user was found
    assert TICKET in answer.ticket_error
    assert "check the ticket number" in answer.reason


def test_a_specified_user_the_psa_does_not_know_would_be_held(tenant, vendor, connection, psa):
    ref = vendor.ref(Person(9, "No", "Body"))
    vendor.user_missing(psa, ref)
    vendor.ticket_answer(psa, TICKET, None)
    answer = preview(tenant, "specified", specified=ref)
    assert_not_logged(answer, PreviewOutcome.HELD)
    assert answer.user is None
    assert "the connection paused" in answer.reason
    assert "Specified PSA user" in answer.reason  # where to fix it


def test_the_assignee_of_a_ticket_the_psa_does_not_know_would_fail(tenant, vendor, connection, psa):
    vendor.ticket_missing(psa, TICKET)  # read once, for its assignee
    answer = preview(tenant, "assignee")
    assert_not_logged(answer, PreviewOutcome.FAILED)
    assert TICKET in answer.ticket_error


def test_a_known_user_and_ticket_would_be_logged(tenant, vendor, connection, psa):
    vendor.user_answer(psa, JOHN)
    vendor.ticket_answer(psa, TICKET, None)
    answer = preview(tenant, "specified", specified=vendor.ref(JOHN))
    assert (answer.outcome, answer.headline) == (PreviewOutcome.LOGGED, "Would be logged.")
    assert 'class="preview-answer preview-logged"' in html(answer)


# --- beyond the user and the ticket (one vendor is enough: no vendor answer is involved) ------
@pytest.mark.parametrize("vendor", VENDORS[:1], ids=["connectwise"], indirect=True)
def test_a_paused_connection_would_hold_the_entry(tenant, vendor, connection, psa):
    connection_pause(connection_id=connection.pk, reason="Bad keys.")
    vendor.user_answer(psa, JOHN)
    vendor.ticket_answer(psa, TICKET, None)
    answer = preview(tenant, "specified", specified=vendor.ref(JOHN))
    assert_not_logged(answer, PreviewOutcome.HELD)
    assert "paused" in answer.reason and "Bad keys." in answer.reason
    assert "resume" in answer.reason


@pytest.mark.parametrize("vendor", VENDORS[:1], ids=["connectwise"], indirect=True)
def test_a_psa_that_cannot_be_asked_leaves_it_unchecked(tenant, vendor, connection):
    with responses.RequestsMock() as mock:
        mock.get(
            vendor.discovery_url,
            body=requests.ConnectionError(
                "Failed to establish a new connection: Connection refused"
            ),
        )
        answer = preview(tenant, "starter")
    assert answer.outcome == PreviewOutcome.UNCHECKED
    assert answer.headline == "Would be logged if the PSA accepts it: it could not be checked."
    assert "Could not connect to the PSA" in answer.reason
    assert 'class="preview-answer preview-unchecked"' in html(answer)


def test_no_connection_would_fail(tenant):
    answer = preview(tenant, "starter")
    assert_not_logged(answer, PreviewOutcome.FAILED)
    assert "no active PSA connection" in answer.reason
    assert "add one under PSA connections" in answer.reason
