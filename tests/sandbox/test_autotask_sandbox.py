"""The Autotask stand-in through the test client, and piadesk's backend against it over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache as django_cache
from django.utils import timezone

from psa.autotask import AutotaskBackend
from psa.base import ConfigurationError, ConnectionConfig, EntryToPost
from psa.http import PSASession
from psa.sandbox.models import SandboxAccount, SandboxTimeEntry
from psa.sandbox.seed import (
    AUTOTASK_API_RESOURCE_ID,
    AUTOTASK_DEMO_API_USER,
    AUTOTASK_DEMO_INTEGRATION_CODE,
    AUTOTASK_DEMO_SECRET,
    seed_autotask,
)

BASE = "/sandbox/autotask/"
API = f"{BASE}v1.0/"
JDOE, ASMITH, TIMELOGGING, GONE = 29682886, 29682887, 29682888, 29682889
PERMISSION_DENIED = (
    "The logged in Resource does not have the adequate permissions to create this entity type."
)


def headers(
    user: str = AUTOTASK_DEMO_API_USER,
    code: str = AUTOTASK_DEMO_INTEGRATION_CODE,
    secret: str = AUTOTASK_DEMO_SECRET,
    **extra: str,
) -> dict[str, str]:
    return {"UserName": user, "ApiIntegrationCode": code, "Secret": secret, **extra}


def utc(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_body(**overrides: Any) -> dict[str, Any]:
    """A valid time entry: 30 minutes for jdoe on ticket 1001 (his assigned role 8)."""
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    body = {
        "ticketID": 1001,
        "resourceID": JDOE,
        "roleID": 8,
        "dateWorked": start.strftime("%Y-%m-%dT00:00:00Z"),
        "startDateTime": utc(start),
        "endDateTime": utc(start + dt.timedelta(minutes=30)),
        "hoursWorked": 0.5,
        "summaryNotes": "Reset the password.\n[piadesk run-abc]",
        "internalNotes": "[piadesk run-abc]",
    }
    body.update(overrides)
    return body


class AutotaskCaller:
    """The Django test client, speaking to the stand-in with valid credentials."""

    def __init__(self, client) -> None:
        self.client = client

    def get(self, path: str, params: dict | None = None, **extra_headers: str):
        return self.client.get(API + path, params or {}, headers=headers(**extra_headers))

    def post(self, path: str, body: Any, **extra_headers: str):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(
            API + path,
            data=data,
            content_type="application/json",
            headers=headers(**extra_headers),
        )

    def query(self, entity: str, *filters: dict, max_records: int | None = None):
        body: dict[str, Any] = {"filter": list(filters)}
        if max_records is not None:
            body["MaxRecords"] = max_records
        return self.post(f"{entity}/query", body)


@pytest.fixture
def account(db):
    return seed_autotask()


@pytest.fixture
def at(client, account) -> AutotaskCaller:
    return AutotaskCaller(client)


def set_proxy(account: SandboxAccount, on: bool) -> None:
    account.options = {**account.options, "proxy_time_entry": on}
    account.save(update_fields=["options"])


def assert_refused(response, message: str) -> None:
    """Autotask's way: HTTP 500 and the error envelope, nothing stored."""
    assert response.status_code == 500, response.content
    assert response.json() == {"errors": [message]}
    assert not SandboxTimeEntry.objects.exists()


# --- zone and authentication ------------------------------------------------------------------
def test_zone_information(client, account):
    response = client.get(f"{API}zoneInformation", {"user": "API@demo-msp.example"})

    assert response.status_code == 200
    assert response.json() == {
        "zoneName": "Sandbox",
        "url": "http://testserver/sandbox/autotask/",
        "webUrl": "http://testserver/sandbox/",
        "ci": 0,
    }


@pytest.mark.parametrize("user", ["nobody@demo-msp.example", ""])
def test_zone_information_for_an_unknown_user_is_a_500(client, account, user):
    response = client.get(f"{API}zoneInformation", {"user": user})

    assert response.status_code == 500
    assert response.json() == {"errors": ["Zone information could not be determined"]}


def test_wrong_secret_is_401(client, account):
    response = client.get(f"{API}ThresholdInformation", headers=headers(secret="wrong"))

    assert response.status_code == 401
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("header_values", "message"),
    [
        ({"user": "nobody@demo-msp.example"}, "The UserName is not valid for this API."),
        ({"user": ""}, "The UserName is not valid for this API."),
        ({"code": "WRONG"}, "IntegrationCode is invalid."),
        ({"code": ""}, "IntegrationCode is invalid."),
    ],
)
def test_wrong_user_name_or_integration_code_is_500(client, account, header_values, message):
    response = client.get(f"{API}ThresholdInformation", headers=headers(**header_values))

    assert response.status_code == 500
    assert response.json() == {"errors": [message]}


def test_threshold_information(at, account):
    account.options = {**account.options, "current_request_count": 4321}
    account.save()

    response = at.get("ThresholdInformation")

    assert response.status_code == 200
    assert response.json() == {
        "externalRequestThreshold": 10000,
        "requestThresholdTimeframe": 60,
        "currentTimeframeRequestCount": 4321,
    }


@pytest.mark.parametrize(("option", "expected"), [(None, 1), (2, 2), (0, 0)])
def test_time_entries_entity_information(at, account, option, expected):
    # What the API user may do with time entries (REST_EntityInformationCall): the stand-in's
    # "time_entry_create_access" switch, All (1) by default.
    if option is not None:
        account.options = {**account.options, "time_entry_create_access": option}
        account.save()

    response = at.get("TimeEntries/entityInformation")

    assert response.status_code == 200
    info = response.json()["info"]
    assert (info["name"], info["canCreate"], info["userAccessForCreate"]) == (
        "TimeEntries",
        True,
        expected,
    )


def test_entity_information_of_an_unknown_entity_is_404(at):
    assert at.get("Nonsense/entityInformation").status_code == 404


# --- queries ----------------------------------------------------------------------------------
def test_resources_by_email_any_case_active_only(at):
    response = at.query(
        "Resources",
        {"op": "eq", "field": "email", "value": "JOHN.DOE@demo-msp.example"},
        {"op": "eq", "field": "isActive", "value": True},
    )

    assert response.status_code == 200
    body = response.json()
    assert [r["id"] for r in body["items"]] == [JDOE]
    assert body["items"][0]["firstName"] == "John"
    assert body["pageDetails"] == {
        "count": 1,
        "requestCount": 500,
        "prevPageUrl": None,
        "nextPageUrl": None,
    }


def test_resources_or_group_and_inactive_filter(at):
    either = {
        "op": "or",
        "items": [
            {"op": "contains", "field": "lastName", "value": "smi"},
            {"op": "beginsWith", "field": "email", "value": "gone@"},
        ],
    }
    everyone = at.query("Resources", either).json()["items"]
    active = at.query("Resources", either, {"op": "eq", "field": "isActive", "value": True})

    assert [r["id"] for r in everyone] == [ASMITH, GONE]
    assert [r["id"] for r in active.json()["items"]] == [ASMITH]


def test_resources_page_with_a_next_page_cursor(at, client):
    first = at.query(
        "Resources", {"op": "eq", "field": "isActive", "value": True}, max_records=2
    ).json()
    next_url = first["pageDetails"]["nextPageUrl"]
    assert next_url.startswith("http://testserver/sandbox/autotask/v1.0/Resources/query/next?")
    split = urlsplit(next_url)
    second = client.get(f"{split.path}?{split.query}", headers=headers()).json()

    assert [r["id"] for r in first["items"]] == [AUTOTASK_API_RESOURCE_ID, JDOE]
    assert [r["id"] for r in second["items"]] == [ASMITH, TIMELOGGING]
    assert second["pageDetails"]["nextPageUrl"] is None
    # The cursor needs the credentials like any other call.
    assert client.get(f"{split.path}?{split.query}").status_code == 500


def test_query_with_get_and_search(at):
    search = json.dumps({"filter": [{"op": "eq", "field": "id", "value": JDOE}]})

    response = at.get("Resources/query", {"search": search})

    assert [r["id"] for r in response.json()["items"]] == [JDOE]


@pytest.mark.parametrize(
    "body",
    [
        {"filter": [{"op": "like", "field": "email", "value": "x"}]},
        {"filter": [{"op": "eq", "field": "nope", "value": "x"}]},
        {"filter": [{"op": "eq", "field": "isActive", "value": "true"}]},  # must be a boolean
        {"filter": [{"op": "eq", "field": "isActive", "value": None}]},
        {"filter": [{"op": "or", "items": []}]},
        {"filter": [], "MaxRecords": 501},
        {"filter": [], "MaxRecords": 0},
        {"filter": "email=x"},
        "not json",
    ],
)
def test_bad_queries_are_500s(at, body):
    response = at.post("Resources/query", body)

    assert response.status_code == 500
    assert response.json()["errors"]


def test_resource_service_desk_roles(at):
    response = at.query(
        "ResourceServiceDeskRoles",
        {"op": "eq", "field": "resourceID", "value": ASMITH},
        {"op": "eq", "field": "isDefault", "value": True},
        {"op": "eq", "field": "isActive", "value": True},
    )

    assert response.status_code == 200
    [row] = response.json()["items"]
    assert (row["resourceID"], row["roleID"], row["isDefault"]) == (ASMITH, 8, True)


def test_the_api_user_has_no_service_desk_role(at):
    response = at.query(
        "ResourceServiceDeskRoles",
        {"op": "eq", "field": "resourceID", "value": AUTOTASK_API_RESOURCE_ID},
    )

    assert response.json()["items"] == []


# --- tickets and resources by id --------------------------------------------------------------
@pytest.mark.parametrize(
    ("ticket_id", "assigned", "role"), [(1001, JDOE, 8), (1002, ASMITH, 9), (1003, None, None)]
)
def test_ticket(at, ticket_id, assigned, role):
    response = at.get(f"Tickets/{ticket_id}")

    assert response.status_code == 200
    item = response.json()["item"]
    assert item["id"] == ticket_id
    assert (item["assignedResourceID"], item["assignedResourceRoleID"]) == (assigned, role)


@pytest.mark.parametrize("path", ["Tickets/999", "Resources/1", "TimeEntries/1"])
def test_unknown_ids_are_a_null_item(at, path):
    response = at.get(path)

    assert response.status_code == 200
    assert response.json() == {"item": None}


def test_resource_by_id(at):
    item = at.get(f"Resources/{GONE}").json()["item"]

    assert (item["userName"], item["isActive"]) == ("gone", False)


# --- creating time entries ----------------------------------------------------------------------
def test_another_resources_time_is_refused_without_proxy_time_entry(at):
    assert_refused(at.post("TimeEntries", entry_body()), PERMISSION_DENIED)


def test_proxy_time_entry_allows_it_and_the_answer_is_an_item_id(at, account):
    set_proxy(account, True)
    body = entry_body()

    response = at.post("TimeEntries", body)

    assert response.status_code == 200, response.content
    entry = SandboxTimeEntry.objects.get()
    assert response.json() == {"itemId": entry.pk}
    assert (entry.vendor, entry.ticket.ticket_id, entry.member.member_id) == (
        "autotask",
        1001,
        JDOE,
    )
    assert entry.notes == body["summaryNotes"]
    assert entry.payload == body
    item = at.get(f"TimeEntries/{entry.pk}").json()["item"]
    assert (item["roleID"], item["hoursWorked"], item["internalNotes"]) == (
        8,
        0.5,
        "[piadesk run-abc]",
    )


def test_the_api_users_own_time_needs_no_proxy(at):
    response = at.post("TimeEntries", entry_body(resourceID=AUTOTASK_API_RESOURCE_ID))

    assert response.status_code == 200, response.content


def test_impersonating_the_resource_allows_it(at):
    response = at.post("TimeEntries", entry_body(), ImpersonationResourceId=str(JDOE))

    assert response.status_code == 200, response.content
    assert SandboxTimeEntry.objects.get().member.member_id == JDOE


@pytest.mark.parametrize(
    ("resource", "impersonated", "message"),
    [
        (JDOE, str(ASMITH), PERMISSION_DENIED),  # impersonating someone else than the resource
        (  # API-only security levels cannot be impersonated
            AUTOTASK_API_RESOURCE_ID,
            str(AUTOTASK_API_RESOURCE_ID),
            PERMISSION_DENIED,
        ),
        (JDOE, str(GONE), f"ImpersonationResourceId '{GONE}' is not an active resource."),
        (JDOE, "jdoe", "ImpersonationResourceId 'jdoe' is not an active resource."),
    ],
)
def test_impersonation_refusals(at, account, resource, impersonated, message):
    set_proxy(account, True)  # impersonation decides, whatever proxy time entry says

    response = at.post(
        "TimeEntries", entry_body(resourceID=resource), ImpersonationResourceId=impersonated
    )

    assert_refused(response, message)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"roleID": None}, "TimeEntries for Tickets must have a roleID"),
        ({"roleID": 7}, "Role does not exist or is invalid"),
        ({"roleID": "8"}, "Role does not exist or is invalid"),
        ({"ticketID": 999}, "ticketID 999 does not reference an existing ticket."),
        ({"ticketID": "1001"}, "ticketID '1001' does not reference an existing ticket."),
        ({"resourceID": GONE}, f"resourceID {GONE} is not an active resource."),
        ({"resourceID": 1}, "resourceID 1 is not an active resource."),
        ({"hoursWorked": 0}, "hoursWorked must be greater than 0 and no more than 24."),
        ({"hoursWorked": -1}, "hoursWorked must be greater than 0 and no more than 24."),
        ({"hoursWorked": 24.01}, "hoursWorked must be greater than 0 and no more than 24."),
        ({"hoursWorked": "0.5"}, "hoursWorked must be greater than 0 and no more than 24."),
        ({"hoursWorked": True}, "hoursWorked must be greater than 0 and no more than 24."),
        ({"dateWorked": None}, "dateWorked is required."),
        ({"startDateTime": "2026-05-01 14:00"}, "startDateTime must be an ISO-8601 UTC time "),
        ({"endDateTime": "2026-05-01T14:00:00"}, "endDateTime must be an ISO-8601 UTC time "),
        ({"summaryNotes": "x" * 8001}, "summaryNotes is longer than the maximum of 8000 "),
        ({"internalNotes": "x" * 8001}, "internalNotes is longer than the maximum of 8000 "),
    ],
)
def test_validation_errors_are_500s(at, account, changes, message):
    set_proxy(account, True)

    response = at.post("TimeEntries", entry_body(**changes))

    assert response.status_code == 500, response.content
    [error] = response.json()["errors"]
    assert error.startswith(message)  # some messages go on with the expected format
    assert not SandboxTimeEntry.objects.exists()


def test_end_must_be_after_start(at, account):
    set_proxy(account, True)
    body = entry_body()
    body["endDateTime"] = body["startDateTime"]

    assert_refused(at.post("TimeEntries", body), "endDateTime must be after startDateTime.")


@pytest.mark.parametrize(
    ("ticket", "resource", "role"),
    [
        (1002, ASMITH, 9),  # the ticket's assigned role
        (1002, JDOE, 9),  # another resource on the ticket's assigned role
        (1003, TIMELOGGING, 8),  # unassigned ticket: the default role
    ],
)
def test_valid_roles(at, account, ticket, resource, role):
    set_proxy(account, True)

    response = at.post("TimeEntries", entry_body(ticketID=ticket, resourceID=resource, roleID=role))

    assert response.status_code == 200, response.content


def test_the_tickets_assigned_resource_must_use_the_tickets_role(at, account):
    # asmith is 1002's assigned resource (role 9); her default role (8) is refused unless
    # time entries may change the role.
    set_proxy(account, True)
    body = entry_body(ticketID=1002, resourceID=ASMITH, roleID=8)
    assert_refused(
        at.post("TimeEntries", body), "The roleID must match the ticket's assigned resource role."
    )
    account.options = {**account.options, "role_change_allowed": True}
    account.save()
    assert at.post("TimeEntries", body).status_code == 200


def test_24_hours_is_the_maximum(at, account):
    set_proxy(account, True)
    start = timezone.now().replace(microsecond=0) - dt.timedelta(days=2)
    body = entry_body(
        startDateTime=utc(start),
        endDateTime=utc(start + dt.timedelta(hours=24)),
        hoursWorked=24,
    )

    assert at.post("TimeEntries", body).status_code == 200


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "null"])
def test_a_body_that_is_not_an_object_is_a_500(at, body):
    response = at.post("TimeEntries", body)

    assert response.status_code == 500
    assert response.json()["errors"]


def test_time_entries_under_a_ticket_do_not_exist(at, account):
    set_proxy(account, True)

    response = at.post("Tickets/1001/TimeEntries", entry_body())

    assert response.status_code == 404
    assert not SandboxTimeEntry.objects.exists()


def test_get_time_entries_is_not_allowed(at):
    assert at.get("TimeEntries").status_code == 405


def test_time_entries_query_finds_the_reference(at, account):
    set_proxy(account, True)
    ours = at.post("TimeEntries", entry_body()).json()["itemId"]
    other = "[piadesk run-other]"
    at.post("TimeEntries", entry_body(summaryNotes=other, internalNotes=other))
    at.post("TimeEntries", entry_body(ticketID=1003, roleID=8))

    response = at.query(
        "TimeEntries",
        {"op": "eq", "field": "ticketID", "value": 1001},
        {
            "op": "or",
            "items": [
                {"op": "contains", "field": "summaryNotes", "value": "[piadesk run-abc]"},
                {"op": "eq", "field": "internalNotes", "value": "[piadesk run-abc]"},
            ],
        },
    )

    assert [e["id"] for e in response.json()["items"]] == [ours]


def test_the_page_and_entries_json_show_autotask_entries(client, at, account):
    set_proxy(account, True)
    entry_id = at.post("TimeEntries", entry_body(summaryNotes="line one\nline <two>")).json()[
        "itemId"
    ]

    html = client.get("/sandbox/").content.decode()
    listed = client.get(f"{BASE}entries.json").json()

    assert "Autotask" in html
    assert "http://testserver/sandbox/autotask/" in html
    assert "line one<br>line &lt;two&gt;" in html
    assert f'<td class="num">{entry_id}</td>' in html
    assert "John Doe (jdoe)" in html
    assert [(e["id"], e["apiUser"], e["ticketID"]) for e in listed] == [
        (entry_id, AUTOTASK_DEMO_API_USER, 1001)
    ]


def test_seed_is_idempotent_and_keeps_switches(account):
    set_proxy(account, True)

    again = seed_autotask(secret="new-secret")

    assert again.pk == account.pk
    assert again.private_key == "new-secret"
    assert again.options["proxy_time_entry"] is True
    assert again.members.count() == 5
    assert again.tickets.count() == 3


# --- piadesk's backend over real HTTP -----------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_backend_posts_through_piadesk_session_over_http(live_server):
    account = seed_autotask()

    def backend(**settings: Any) -> AutotaskBackend:
        config = ConnectionConfig(
            vendor="autotask",
            settings={
                "api_username": AUTOTASK_DEMO_API_USER,
                "discovery_url": f"{live_server.url}{BASE}",
                **settings,
            },
            secrets={
                "integration_code": AUTOTASK_DEMO_INTEGRATION_CODE,
                "secret": AUTOTASK_DEMO_SECRET,
            },
            cache_key="live",
        )
        session = PSASession(
            connect_timeout=5, read_timeout=10, secrets=list(config.secrets.values())
        )
        return AutotaskBackend(config, http=session, cache=django_cache)

    def entry(user, ticket_id: str, run: str, **kwargs: Any) -> EntryToPost:
        end = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
        reference = f"[piadesk {run}]"
        return EntryToPost(
            ticket_id=ticket_id,
            user=user,
            start=end - dt.timedelta(minutes=20),
            end=end,
            notes=f"Reset the password.\n{reference}",
            reference=reference,
            **kwargs,
        )

    plain = backend()
    # A test cannot see Proxy Time Entry (nor can Autotask's API): it says what it checked.
    tested = plain.check_connection()
    assert tested.startswith(
        "Connected to Autotask (zone Sandbox); 0 of 10000 requests used this hour. The API "
        "user may create time entries. Whether Autotask lets this API user log time for other "
        "resources (Proxy Time Entry) shows on the first entry"
    )
    assert backend(impersonate=True).check_connection().startswith(
        "Connected to Autotask (zone Sandbox); 0 of 10000 requests used this hour. The API "
        "user may create time entries. Each entry is logged as its resource (impersonation)"
    )
    account.options = {**account.options, "time_entry_create_access": 0}
    account.save(update_fields=["options"])
    with pytest.raises(ConfigurationError, match="its API user may not create time entries"):
        plain.check_connection()
    account.options = {**account.options, "time_entry_create_access": 1}
    account.save(update_fields=["options"])
    jdoe = plain.find_user_by_email("John.Doe@demo-msp.example")
    assert (jdoe.ref, jdoe.name, jdoe.extra) == (str(JDOE), "John Doe", {"default_role_id": 8})

    # 1. Proxy Time Entry off: Autotask's refusal, in plain words with the fix.
    with pytest.raises(ConfigurationError) as refused:
        plain.post_time_entry(entry(jdoe, "1001", "run-1"))
    assert refused.value.status == 500
    assert PERMISSION_DENIED in refused.value.message
    assert "Proxy Time Entry" in refused.value.message
    assert "turn on impersonation" in refused.value.message
    assert not SandboxTimeEntry.objects.exists()

    # 2. With Proxy Time Entry on: posted with the default role, and found by its reference.
    set_proxy(account, True)
    result = plain.post_time_entry(entry(jdoe, "1001", "run-1"))
    stored = SandboxTimeEntry.objects.get(pk=int(result.psa_entry_id))
    assert (stored.member.member_id, stored.payload["roleID"]) == (JDOE, 8)
    assert stored.payload["hoursWorked"] == 0.33
    assert plain.find_entry_by_reference("1001", "[piadesk run-1]") == result.psa_entry_id
    assert plain.find_entry_by_reference("1001", "[piadesk run-9]") is None

    # 3. The assignee of 1002 is logged on the ticket's assigned role (9, not asmith's 8).
    ticket = plain.get_ticket("1002")
    result = plain.post_time_entry(
        entry(ticket.assignee, "1002", "run-2", log_as="assignee", ticket=ticket)
    )
    assert SandboxTimeEntry.objects.get(pk=int(result.psa_entry_id)).payload["roleID"] == 9

    # 4. asmith logged as the starter on her own ticket 1002 (the ticket not read first): her
    # default role (8) is refused, the ticket's assigned role (9) is tried once and accepted.
    asmith = plain.find_user_by_email("alice.smith@demo-msp.example")
    result = plain.post_time_entry(entry(asmith, "1002", "run-3", log_as="starter"))
    assert SandboxTimeEntry.objects.get(pk=int(result.psa_entry_id)).payload["roleID"] == 9
    found = plain.find_entry("1002", "[piadesk run-3]")
    stored = SandboxTimeEntry.objects.get(pk=int(result.psa_entry_id))
    assert (found.start, found.end) == (stored.time_start, stored.time_end)

    # 4. Proxy Time Entry off again, but impersonating the resource: accepted.
    set_proxy(account, False)
    asmith = plain.find_user_by_email("alice.smith@demo-msp.example")
    result = backend(impersonate=True).post_time_entry(entry(asmith, "1003", "run-3"))
    assert SandboxTimeEntry.objects.get(pk=int(result.psa_entry_id)).member.member_id == ASMITH

    # The secrets never reach the recorded exchanges.
    exchanges = repr(plain.http.exchanges)
    assert AUTOTASK_DEMO_SECRET not in exchanges
    assert AUTOTASK_DEMO_INTEGRATION_CODE not in exchanges
