"""The ConnectWise stand-in through Django's test client."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from psa.sandbox.models import SandboxTimeEntry
from psa.sandbox.seed import seed_connectwise
from tests.sandbox.conftest import API, SITE, ConnectWiseCaller, auth_headers, entry_body

pytestmark = pytest.mark.django_db


def utc(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_invalid(response, field: str) -> dict:
    """The ConnectWise validation envelope, with an error on ``field``; returns that error."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "InvalidObject"
    assert body["message"] == "TimeEntry object is invalid"
    errors = [e for e in body["errors"] if e["field"] == field]
    assert errors, body
    assert set(errors[0]) == {"code", "message", "resource", "field"}
    assert errors[0]["resource"] == "TimeEntry"
    return errors[0]


# --- discovery and authentication -----------------------------------------------------------
def test_companyinfo_for_a_known_company(client, account):
    response = client.get(f"{SITE}/login/companyinfo/demo")

    assert response.status_code == 200
    info = response.json()
    assert info["Codebase"] == "v2025_1/"
    assert info["CompanyID"] == "demo"
    assert info["IsCloud"] is False
    assert info["CompanyName"]
    assert info["VersionCode"] == "v2025.1"
    assert info["SiteUrl"] == "testserver/sandbox/connectwise"


def test_companyinfo_for_an_unknown_company_is_json_null(client, account):
    response = client.get(f"{SITE}/login/companyinfo/nobody")

    assert response.status_code == 200
    assert response.content == b"null"


def test_system_info(cw):
    response = cw.get("system/info")

    assert response.status_code == 200
    assert response.json() == {
        "version": "v2025.1.12345",
        "isCloud": False,
        "serverTimeZone": "UTC",
        "cloudRegion": "NA",
    }


@pytest.mark.parametrize(
    "headers",
    [
        auth_headers(private_key="wrong"),
        auth_headers(public_key="wrong"),
        auth_headers(company="other"),
        {"clientId": "x"},
        {"Authorization": "Basic not-base64!", "clientId": "x"},
        {"Authorization": "Bearer abc", "clientId": "x"},
    ],
    ids=["private key", "public key", "company", "no header", "bad base64", "not basic"],
)
def test_bad_credentials_are_401(client, account, headers):
    response = client.get(API + "system/info", headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"


@pytest.mark.parametrize("client_id", [None, "", "  "])
def test_a_missing_client_id_is_refused(client, account, client_id):
    response = client.get(API + "system/info", headers=auth_headers(client_id=client_id))

    assert response.status_code == 400
    assert response.json() == {"code": "InvalidObject", "message": "clientId header is required"}


def test_another_codebase_is_404(client, account):
    response = client.get(f"{SITE}/v2019_1/apis/3.0/system/info", headers=auth_headers())

    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"


def test_unknown_routes_are_404_json(cw, client):
    for response in (
        cw.get("company/companies"),
        cw.post("time/entries/1/notes", {}),
        client.get(f"{SITE}/nothing/here"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "NotFound"


def test_unsupported_method_is_405(cw):
    response = cw.client.put(API + "system/info", headers=cw.headers)

    assert response.status_code == 405
    assert response.json()["code"] == "MethodNotAllowed"


# --- members --------------------------------------------------------------------------------
def test_members_found_by_e_mail_in_either_field(cw):
    email = "Alice.Smith@demo-msp.example"  # office e-mail, different case
    conditions = f'(primaryEmail="{email}" or officeEmail="{email}") and inactiveFlag=false'

    response = cw.get("system/members", {"conditions": conditions})

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": 102,
            "identifier": "asmith",
            "firstName": "Alice",
            "lastName": "Smith",
            "primaryEmail": "",
            "officeEmail": "alice.smith@demo-msp.example",
            "inactiveFlag": False,
        }
    ]
    assert "Link" not in response


def test_inactive_members_are_left_out_by_the_client_condition(cw):
    conditions = 'primaryEmail="gone@demo-msp.example" and inactiveFlag=false'

    assert cw.get("system/members", {"conditions": conditions}).json() == []
    assert [m["identifier"] for m in cw.get("system/members").json()] == [
        "jdoe",
        "asmith",
        "timelogging",
        "gone",
    ]


def test_members_paging_follows_the_link_header(cw):
    params = {"conditions": 'primaryEmail like "%@demo-msp.example"', "pageSize": 2}

    first = cw.get("system/members", params)

    assert [m["identifier"] for m in first.json()] == ["jdoe", "timelogging"]
    link = first["Link"]
    assert link.startswith(
        "<http://testserver/sandbox/connectwise/v2025_1/apis/3.0/system/members?"
    )
    assert link.endswith('>; rel="next"')
    next_url = urlsplit(link[1 : link.index(">")])
    second = cw.client.get(f"{next_url.path}?{next_url.query}", headers=cw.headers)
    assert [m["identifier"] for m in second.json()] == ["gone"]
    assert "Link" not in second
    assert "page=2" in next_url.query and "pageSize=2" in next_url.query


def test_page_past_the_end_is_empty_and_page_size_is_capped(cw):
    assert cw.get("system/members", {"page": 9}).json() == []
    assert len(cw.get("system/members", {"pageSize": 5000}).json()) == 4


@pytest.mark.parametrize("params", [{"page": "0"}, {"page": "x"}, {"pageSize": "-1"}])
def test_bad_paging_is_400(cw, params):
    response = cw.get("system/members", params)

    assert response.status_code == 400
    assert response.json()["code"] == "InvalidObject"


@pytest.mark.parametrize(
    "conditions", ['email="a@b.c"', 'identifier="jdoe', "inactiveFlag=maybe", "(("]
)
def test_bad_conditions_are_400_with_an_explanation(cw, conditions):
    response = cw.get("system/members", {"conditions": conditions})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidObject"
    assert body["message"].startswith("Invalid conditions: ")


# --- tickets --------------------------------------------------------------------------------
def test_ticket_with_an_owner(cw):
    response = cw.get("service/tickets/1002")

    assert response.status_code == 200
    assert response.json() == {
        "id": 1002,
        "summary": "Onboard a new employee",
        "owner": {"id": 102, "identifier": "asmith", "name": "Alice Smith"},
        "resources": "asmith,jdoe",
    }


def test_ticket_without_an_owner_leaves_owner_out(cw):
    ticket = cw.get("service/tickets/1003").json()

    assert ticket["id"] == 1003
    assert ticket.get("owner") is None


def test_ticket_fields_are_honoured(cw):
    response = cw.get("service/tickets/1001", {"fields": "id,owner/identifier"})

    assert response.json() == {"id": 1001, "owner": {"identifier": "jdoe"}}


def test_unknown_ticket_is_404(cw):
    response = cw.get("service/tickets/9999")

    assert response.status_code == 404
    assert response.json() == {"code": "NotFound", "message": "Ticket 9999 not found"}


def test_tickets_of_another_account_are_not_visible(client, account):
    other = seed_connectwise(company_id="other", public_key="pub2", private_key="priv2")
    other.tickets.filter(ticket_id=1002).delete()
    caller = ConnectWiseCaller(client, auth_headers("other", "pub2", "priv2"))

    assert caller.get("service/tickets/1002").status_code == 404
    assert caller.get("service/tickets/1001").status_code == 200


# --- creating time entries ------------------------------------------------------------------
def test_time_entry_is_created_and_stored(cw, account):
    body = entry_body()

    response = cw.post("time/entries", body)

    assert response.status_code == 201, response.content
    created = response.json()
    entry = SandboxTimeEntry.objects.get()
    assert created["id"] == entry.pk
    assert created["chargeToId"] == 1001
    assert created["chargeToType"] == "ServiceTicket"
    assert created["member"] == {"id": 101, "identifier": "jdoe", "name": "John Doe"}
    assert created["timeStart"] == body["timeStart"]
    assert created["timeEnd"] == body["timeEnd"]
    assert created["actualHours"] == 0.33
    assert created["notes"] == body["notes"]
    assert created["billableOption"] == "Billable"  # stamped, as the agreement would
    assert isinstance(created["_info"], dict)
    assert entry.account == account
    assert entry.vendor == "connectwise"
    assert entry.ticket.ticket_id == 1001
    assert entry.member.identifier == "jdoe"
    assert entry.payload == body
    assert utc(entry.time_end) == body["timeEnd"]


def test_member_by_id_and_identifier_in_any_case(cw):
    assert cw.post("time/entries", entry_body(member={"id": 103})).status_code == 201
    response = cw.post("time/entries", entry_body(member={"identifier": "ASmith"}))

    assert response.status_code == 201
    assert response.json()["member"]["identifier"] == "asmith"


def test_an_explicit_billable_option_is_kept(cw):
    response = cw.post("time/entries", entry_body(billableOption="NoCharge"))

    assert response.json()["billableOption"] == "NoCharge"


def test_an_entry_ending_in_the_future_is_refused(cw):
    end = timezone.now() + dt.timedelta(minutes=1)
    body = entry_body(timeStart=utc(end - dt.timedelta(minutes=20)), timeEnd=utc(end))

    response = cw.post("time/entries", body)

    error = assert_invalid(response, "timeEnd")
    assert "future" in error["message"]
    assert not SandboxTimeEntry.objects.exists()


def test_an_entry_starting_in_the_future_without_an_end_is_refused(cw):
    body = entry_body(timeStart=utc(timezone.now() + dt.timedelta(minutes=5)))
    del body["timeEnd"]

    assert_invalid(cw.post("time/entries", body), "timeStart")


def test_the_clock_offset_option_moves_the_sandbox_clock(cw, account):
    account.options = {"clock_offset_seconds": -120}  # the PSA's clock is 2 minutes behind
    account.save()
    end = timezone.now() - dt.timedelta(seconds=30)
    body = entry_body(timeStart=utc(end - dt.timedelta(minutes=5)), timeEnd=utc(end))

    assert_invalid(cw.post("time/entries", body), "timeEnd")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timeStart": None}, "timeStart"),
        ({"timeStart": "yesterday"}, "timeStart"),
        ({"timeStart": "2026-05-01T14:00:00"}, "timeStart"),  # no zone
        ({"timeEnd": "2026-05-01 nope"}, "timeEnd"),
        ({"chargeToType": "Nope"}, "chargeToType"),
        ({"chargeToType": None}, "chargeToType"),
        ({"chargeToType": "ProjectTicket"}, "chargeToType"),
        ({"chargeToId": 9999}, "chargeToId"),
        ({"chargeToId": "1001"}, "chargeToId"),
        ({"chargeToId": None}, "chargeToId"),
        ({"member": {"identifier": "gone"}}, "member"),
        ({"member": {"identifier": "nobody"}}, "member"),
        ({"member": {"id": 104}}, "member"),
        ({"member": "jdoe"}, "member"),
        ({"member": None}, "member"),
        ({"billableOption": "Sometimes"}, "billableOption"),
        ({"notes": 42}, "notes"),
    ],
)
def test_invalid_entries_are_refused_with_the_field(cw, overrides, field):
    response = cw.post("time/entries", entry_body(**overrides))

    assert_invalid(response, field)
    assert not SandboxTimeEntry.objects.exists()


def test_missing_time_start_is_refused(cw):
    body = entry_body()
    del body["timeStart"]

    error = assert_invalid(cw.post("time/entries", body), "timeStart")
    assert "required" in error["message"]


def test_end_before_start_is_refused(cw):
    body = entry_body()
    body["timeStart"], body["timeEnd"] = body["timeEnd"], body["timeStart"]

    assert_invalid(cw.post("time/entries", body), "timeEnd")


def test_every_fault_is_listed(cw):
    response = cw.post("time/entries", entry_body(chargeToId=9999, member={"identifier": "gone"}))

    assert {e["field"] for e in response.json()["errors"]} == {"chargeToId", "member"}


def test_notes_have_no_invented_limit(cw):
    response = cw.post("time/entries", entry_body(notes="x" * 20000))

    assert response.status_code == 201


@pytest.mark.parametrize("raw", ['{"timeStart": ', "not json", "", b"\xff\xfe"])
def test_malformed_json_is_400(cw, raw):
    response = cw.post("time/entries", raw)

    assert response.status_code == 400
    assert response.json()["code"] == "InvalidObject"


@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null"])
def test_a_body_that_is_not_an_object_is_400(cw, raw):
    response = cw.post("time/entries", raw)

    assert response.status_code == 400
    assert response.json()["code"] == "InvalidObject"


# --- listing time entries -------------------------------------------------------------------
@pytest.fixture
def posted(cw):
    ids = []
    for ticket, member, run in [
        (1001, "jdoe", "run-a"),
        (1002, "asmith", "run-b"),
        (1001, "timelogging", "run-c"),
    ]:
        body = entry_body(
            chargeToId=ticket, member={"identifier": member}, notes=f"piadesk-run: {run}"
        )
        response = cw.post("time/entries", body)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


def test_entries_listed_by_ticket(cw, posted):
    response = cw.get(
        "time/entries", {"conditions": 'chargeToType="ServiceTicket" and chargeToId=1001'}
    )

    assert response.status_code == 200
    assert [e["id"] for e in response.json()] == [posted[0], posted[2]]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ('notes contains "run-b"', [1]),
        ('chargeToId=1001 and notes like "%run-c"', [2]),
        ('member/identifier="ASMITH"', [1]),
        ("member/id=101 or member/id=103", [0, 2]),
        ('chargeToType="ProjectTicket"', []),
    ],
)
def test_entries_listed_by_other_conditions(cw, posted, conditions, expected):
    response = cw.get("time/entries", {"conditions": conditions})

    assert [e["id"] for e in response.json()] == [posted[i] for i in expected]


def test_entries_listing_pages_and_fields(cw, posted):
    first = cw.get("time/entries", {"pageSize": 2, "fields": "id,notes"})

    assert first.json() == [
        {"id": posted[0], "notes": "piadesk-run: run-a"},
        {"id": posted[1], "notes": "piadesk-run: run-b"},
    ]
    assert "page=2" in first["Link"]
    second = cw.get("time/entries", {"pageSize": 2, "page": 2})
    assert [e["id"] for e in second.json()] == [posted[2]]
    assert "Link" not in second


def test_entries_listing_with_a_bad_condition_is_400(cw):
    response = cw.get("time/entries", {"conditions": 'ticket="1001"'})

    assert response.status_code == 400
    assert "Unknown field" in response.json()["message"]


def test_entries_of_another_account_are_not_listed(client, cw, posted):
    seed_connectwise(company_id="other", public_key="pub2", private_key="priv2")
    other = ConnectWiseCaller(client, auth_headers("other", "pub2", "priv2"))

    assert other.get("time/entries").json() == []
