"""The HaloPSA stand-in: through Django's test client, and over real HTTP with piadesk's backend."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from psa.base import ConnectionConfig, EntryToPost, PSAUser, UserError
from psa.halopsa import HaloPSABackend
from psa.http import PSASession
from psa.sandbox.models import SandboxAccount, SandboxMember, SandboxTimeEntry
from psa.sandbox.seed import DEMO_HALO_CLIENT_ID, DEMO_HALO_CLIENT_SECRET, seed_halopsa
from tests.psa.conftest import FakeCache
from tests.psa.contract import HALOPSA_SPEC, assert_matches_schema

SITE = "/sandbox/halopsa"
TOKEN = f"{SITE}/auth/token"
API = f"{SITE}/api/"
DENIED = {"Message": "Authorization has been denied for this request."}


def credentials(**overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_HALO_CLIENT_ID,
        "client_secret": DEMO_HALO_CLIENT_SECRET,
        "scope": "all",
    }
    form.update(overrides)
    return form


def utc(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def action(**overrides: Any) -> dict[str, Any]:
    """A valid action: 30 minutes on ticket 1001 for agent 3, ending ten minutes ago."""
    end = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=10)
    body = {
        "ticket_id": 1001,
        "who_agentid": 3,
        "outcome": "Automation",
        "note": "Reset the password.\npiadesk-run:run-abc",
        "actionarrivaldate": utc(end - dt.timedelta(minutes=30)),
        "actioncompletiondate": utc(end),
        "timetaken": 0.5,
        "hiddenfromuser": True,
        "sendemail": False,
    }
    body.update(overrides)
    return body


class HaloCaller:
    """The Django test client with a bearer token from the sandbox's token endpoint."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, params: dict[str, Any] | None = None):
        return self.client.get(API + path, params or {}, headers=self.headers)

    def post(self, path: str, body: Any):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(
            API + path, data=data, content_type="application/json", headers=self.headers
        )


@pytest.fixture
def account(db) -> SandboxAccount:
    return seed_halopsa()


def get_token(client, tenant: str = "demo", **form: str):
    url = f"{TOKEN}?tenant={tenant}" if tenant else TOKEN
    return client.post(url, credentials(**form))


@pytest.fixture
def halo(client, account) -> HaloCaller:
    return HaloCaller(client, get_token(client).json()["access_token"])


def set_options(account: SandboxAccount, **options: Any) -> None:
    account.options = {**account.options, **options}
    account.save(update_fields=["options"])


# --- the token --------------------------------------------------------------------------------
@pytest.mark.parametrize("tenant", ["demo", ""])
def test_token_for_client_credentials(client, account, tenant):
    response = get_token(client, tenant=tenant)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "all")
    assert body["access_token"]


@pytest.mark.parametrize(
    ("form", "tenant", "status", "error"),
    [
        ({"client_secret": "wrong"}, "demo", 401, "invalid_client"),
        ({"client_id": "nobody"}, "demo", 401, "invalid_client"),
        ({}, "other-tenant", 401, "invalid_client"),
        ({"grant_type": "password"}, "demo", 400, "unsupported_grant_type"),
        ({"scope": ""}, "demo", 400, "invalid_scope"),
    ],
)
def test_token_refusals(client, account, form, tenant, status, error):
    response = get_token(client, tenant=tenant, **form)

    assert response.status_code == status
    assert response.json() == {"error": error}


def test_token_endpoint_takes_post_only(client, account):
    assert client.get(TOKEN).status_code == 405


# --- bearer authentication --------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}],
    ids=["none", "forged", "not bearer"],
)
def test_api_without_a_valid_token_is_401(client, account, headers):
    response = client.get(API + "Agent/me", headers=headers)

    assert response.status_code == 401
    assert response.json() == DENIED


def test_an_expired_token_is_401(client, account):
    set_options(account, token_lifetime_seconds=0)
    halo = HaloCaller(client, get_token(client).json()["access_token"])

    assert halo.get("Agent/me").status_code == 401


def test_a_rotated_secret_revokes_issued_tokens(client, account, halo):
    assert halo.get("Agent/me").status_code == 200
    seed_halopsa(client_secret="rotated")

    assert halo.get("Agent/me").status_code == 401


def test_unknown_paths_are_404_and_wrong_methods_405(halo, client):
    assert halo.get("Clients").status_code == 404
    assert client.get(f"{SITE}/nothing").status_code == 404
    response = halo.post("Agent/me", {})
    assert response.status_code == 405
    assert "Message" in response.json()


# --- agents -----------------------------------------------------------------------------------
def test_agents_are_a_bare_array_without_the_placeholder_or_disabled_ones(halo):
    response = halo.get("Agent")

    assert response.status_code == 200
    agents = response.json()
    assert [a["id"] for a in agents] == [3, 4, 5]
    assert agents[0] == {
        "id": 3,
        "name": "John Doe",
        "firstname": "John",
        "surname": "Doe",
        "email": "john.doe@demo-msp.example",
        "initials": "JD",
        "isdisabled": False,
        "use": "agent",
    }


def test_agent_switches(halo):
    def ids(**params):
        return [a["id"] for a in halo.get("Agent", params).json()]

    assert ids(includedisabled="true") == [3, 4, 5, 6]
    assert ids(includeunassigned="true") == [1, 3, 4, 5]
    assert ids(includedisabled="true", includeenabled="false") == [6]
    assert ids(count=2) == [3, 4]


def test_agent_search_is_fuzzy(halo):
    found = halo.get("Agent", {"search": "john.doe@demo-msp.example"}).json()

    # Every agent of the domain comes back: the client must match the e-mail exactly.
    assert [a["id"] for a in found] == [3, 4, 5]
    assert [a["id"] for a in halo.get("Agent", {"search": "Alice"}).json()] == [4]
    assert halo.get("Agent", {"search": "zz"}).json() == []


def test_agent_paging_repeats_the_last_page(halo):
    def page(number):
        params = {"pageinate": "true", "page_size": 2, "page_no": number}
        return [a["id"] for a in halo.get("Agent", params).json()]

    assert page(1) == [3, 4]
    assert page(2) == [5]
    assert page(3) == [5]  # past the end: the last page again
    assert page(99) == [5]


@pytest.mark.parametrize("params", [{"page_no": "0", "pageinate": "true"}, {"count": "x"}])
def test_bad_paging_is_400(halo, params):
    assert halo.get("Agent", params).status_code == 400


def test_agent_me_and_by_id(halo):
    assert halo.get("Agent/me").json()["id"] == 5
    assert halo.get("Agent/6").json()["isdisabled"] is True
    missing = halo.get("Agent/99")
    assert missing.status_code == 404
    assert missing.json() == "Agent 99 not found."  # a bare JSON string


# --- outcomes ---------------------------------------------------------------------------------
def test_outcomes(halo, account):
    visible = halo.get("Outcome").json()
    assert [o["outcome"] for o in visible] == ["Note", "Remote Work"]
    every = halo.get("Outcome", {"showhidden": "true"}).json()
    assert [(o["id"], o["outcome"]) for o in every] == [
        (1, "Note"),
        (12, "Automation"),
        (13, "Remote Work"),
    ]
    set_options(account, outcomes=[{"id": 40, "outcome": "Scripted"}])
    assert halo.get("Outcome").json() == [{"id": 40, "outcome": "Scripted"}]


# --- tickets ----------------------------------------------------------------------------------
def test_ticket_with_an_agent(halo):
    body = halo.get("Tickets/1001").json()

    assert body == {
        "id": 1001,
        "summary": "Password reset for a user",
        "agent_id": 3,
        "agent_name": "John Doe",
        "dateoccurred": "2026-05-01T08:00:00",  # UTC, no zone suffix
        "deadlinedate": "1900-01-01T00:00:00",  # Halo's "no date"
    }


def test_an_unassigned_ticket_has_agent_1(halo):
    body = halo.get("Tickets/1003").json()

    assert body["agent_id"] == 1
    assert "agent_name" not in body


def test_an_unknown_ticket_is_404(halo):
    response = halo.get("Tickets/9999")

    assert response.status_code == 404
    assert response.json() == {"message": "Ticket 9999 not found."}


# --- creating actions -------------------------------------------------------------------------
def test_an_action_is_created_from_an_array(halo, account):
    body = action()
    assert_matches_schema(body, "Actions", spec=HALOPSA_SPEC)

    response = halo.post("Actions", [body])

    assert response.status_code == 200, response.content
    created = response.json()
    assert created["id"] == 2  # action 1 is the ticket's opening
    assert created["ticket_id"] == 1001
    assert created["who_agentid"] == 3
    assert created["who"] == "John Doe"
    assert created["outcome"] == "Automation"
    assert created["timetaken"] == 0.5
    assert created["actioncompletiondate"] == body["actioncompletiondate"].rstrip("Z")
    entry = SandboxTimeEntry.objects.get()
    assert (entry.vendor, entry.account, entry.ticket.ticket_id) == ("halopsa", account, 1001)
    assert entry.member.member_id == 3
    assert entry.notes == body["note"]
    assert utc(entry.time_start) == body["actionarrivaldate"]
    assert utc(entry.time_end) == body["actioncompletiondate"]
    assert entry.payload == {**body, "id": 2}


def test_action_ids_count_per_ticket(halo):
    first = halo.post("Actions", [action()]).json()
    second = halo.post("Actions", [action()]).json()
    other = halo.post("Actions", [action(ticket_id=1002, who_agentid=4)]).json()

    assert (first["id"], second["id"], other["id"]) == (2, 3, 2)


def test_several_actions_in_one_body_answer_a_list(halo):
    response = halo.post("Actions", [action(), action(ticket_id=1003, outcome_id=7, outcome="")])

    assert response.status_code == 200
    assert [(a["ticket_id"], a["id"]) for a in response.json()] == [(1001, 2), (1003, 2)]


def test_an_action_without_dates_takes_its_length_from_timetaken(halo):
    response = halo.post(
        "Actions", [action(actionarrivaldate=None, actioncompletiondate=None, timetaken=0.25)]
    )

    assert response.status_code == 200
    entry = SandboxTimeEntry.objects.get()
    assert entry.time_end - entry.time_start == dt.timedelta(minutes=15)


def test_an_object_body_is_refused(halo):
    response = halo.post("Actions", action())

    assert response.status_code == 400
    assert response.json() == {
        "ClassName": "HaloValidationException",
        "Message": "The request body must be a JSON array of actions.",
    }
    assert not SandboxTimeEntry.objects.exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json", "not valid JSON"),
        ([], "no actions"),
        (["text"], "JSON object"),
    ],
)
def test_bad_bodies_are_refused(halo, body, expected):
    response = halo.post("Actions", body if isinstance(body, str) else body)

    assert response.status_code == 400
    assert expected in response.json()["Message"]


@pytest.mark.parametrize(
    "changes",
    [{"outcome": None}, {"outcome": "  "}, {"outcome": "", "outcome_id": 0}, {"outcome": 5}],
)
def test_an_outcome_is_required(halo, changes):
    response = halo.post("Actions", [action(**changes)])

    assert response.status_code == 400
    assert response.json() == "Please choose an outcome for the action (outcome or outcome_id)."
    assert not SandboxTimeEntry.objects.exists()


def test_an_outcome_id_alone_is_enough(halo):
    response = halo.post("Actions", [action(outcome=None, outcome_id=12)])

    assert response.status_code == 200
    assert response.json()["outcome_id"] == 12


@pytest.mark.parametrize(
    ("changes", "shape", "words"),
    [
        ({"ticket_id": 9999}, "exception", "Ticket 9999 does not exist."),
        ({"ticket_id": "1001"}, "exception", "does not exist"),
        ({"who_agentid": 1}, "string", "agent 1 (Unassigned)"),
        ({"who_agentid": 6}, "string", "agent 6 does not exist or is disabled"),
        ({"who_agentid": 99}, "string", "agent 99"),
        ({"who_agentid": "3"}, "string", "agent '3'"),
        ({"timetaken": -0.5}, "exception", "timetaken"),
        ({"timetaken": "abc"}, "exception", "timetaken"),
        ({"timetaken": True}, "exception", "timetaken"),
        ({"actionarrivaldate": "yesterday"}, "exception", "actionarrivaldate"),
        (
            {
                "actionarrivaldate": "2026-05-01T15:00:00Z",
                "actioncompletiondate": "2026-05-01T14:00:00Z",
            },
            "exception",
            "before",
        ),
        ({"note": 5}, "exception", "note"),
        ({"id": 4}, "exception", "leave id out"),
    ],
)
def test_invalid_actions_are_refused_in_halos_shapes(halo, changes, shape, words):
    response = halo.post("Actions", [action(**changes)])

    assert response.status_code == 400
    body = response.json()
    if shape == "string":
        assert isinstance(body, str) and words in body
    else:
        assert set(body) == {"ClassName", "Message"} and words in body["Message"]


def test_one_bad_action_refuses_the_whole_body(halo):
    response = halo.post("Actions", [action(), action(who_agentid=6)])

    assert response.status_code == 400
    assert not SandboxTimeEntry.objects.exists()


# --- reading actions: the lag -----------------------------------------------------------------
def test_new_actions_are_hidden_within_the_read_lag(halo):
    created = halo.post("Actions", [action()]).json()

    assert halo.get("Actions", {"ticket_id": 1001}).json() == {"record_count": 0, "actions": []}

    # Three seconds later (the default lag) it shows.
    SandboxTimeEntry.objects.update(received_at=timezone.now() - dt.timedelta(seconds=4))
    listed = halo.get("Actions", {"ticket_id": 1001}).json()
    assert listed["record_count"] == 1
    assert [a["id"] for a in listed["actions"]] == [created["id"]]


def test_without_lag_actions_are_listed_at_once(halo, account):
    set_options(account, read_lag_seconds=0)
    halo.post("Actions", [action(note="first piadesk-run:a")])
    halo.post("Actions", [action(note="second piadesk-run:b")])
    halo.post("Actions", [action(ticket_id=1002, who_agentid=4)])

    listed = halo.get("Actions", {"ticket_id": 1001}).json()

    assert listed["record_count"] == 2
    assert [(a["id"], a["note"]) for a in listed["actions"]] == [
        (2, "first piadesk-run:a"),
        (3, "second piadesk-run:b"),
    ]
    first = listed["actions"][0]
    assert first["actionarrivaldate"].count(":") == 2 and not first["actionarrivaldate"].endswith(
        "Z"
    )
    assert halo.get("Actions", {"ticket_id": 1001, "count": 1}).json()["record_count"] == 1
    assert halo.get("Actions").json()["record_count"] == 3


# --- seed and page ----------------------------------------------------------------------------
def test_seed_is_idempotent(db):
    seed_halopsa()
    seed_halopsa()

    account = SandboxAccount.objects.get(vendor="halopsa")
    assert account.company_id == "demo"
    assert account.options == {"read_lag_seconds": 3, "api_agent_id": 5}
    assert list(
        SandboxMember.objects.filter(account=account).values_list("member_id", "identifier")
    ) == [(1, "unassigned"), (3, "jdoe"), (4, "asmith"), (5, "timelogging"), (6, "disabled")]
    assert [(t.ticket_id, t.owner and t.owner.member_id) for t in account.tickets.all()] == [
        (1001, 3),
        (1002, 4),
        (1003, None),
    ]


def test_the_page_lists_halo_actions(client, halo):
    halo.post("Actions", [action(ticket_id=1002, who_agentid=4, note="done <it>")])

    html = client.get("/sandbox/").content.decode()

    assert "HaloPSA" in html
    assert "http://testserver/sandbox/halopsa/auth" in html
    assert "http://testserver/sandbox/halopsa/api" in html
    assert html.index("Ticket #1002") < html.index("done &lt;it&gt;") < html.index("Ticket #1003")
    assert '<td class="num">2</td>' in html  # the per-ticket action id
    assert "Alice Smith (asmith)" in html


# --- over real HTTP, through piadesk's backend ------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_backend_logs_time_in_the_sandbox_over_http(live_server):
    account = seed_halopsa()
    site = f"{live_server.url}{SITE}"
    config = ConnectionConfig(
        vendor="halopsa",
        settings={
            "auth_url": f"{site}/auth",
            "resource_url": f"{site}/api",
            "halo_tenant": "demo",
            "client_id": DEMO_HALO_CLIENT_ID,
        },
        secrets={"client_secret": DEMO_HALO_CLIENT_SECRET},
        cache_key="live",
    )
    assert HaloPSABackend.validate_config(config.settings, config.secrets) == {}
    cache = FakeCache()
    http = PSASession(connect_timeout=5, read_timeout=10, secrets=[DEMO_HALO_CLIENT_SECRET])
    backend = HaloPSABackend(config, http=http, cache=cache)

    assert backend.check_connection() == (
        "Connected to HaloPSA as Time Logging (tenant demo); outcome “Automation” found"
    )
    user = backend.find_user_by_email("John.Doe@demo-msp.example")
    assert user == PSAUser(ref="3", name="John Doe", email="john.doe@demo-msp.example")
    assert backend.find_user_by_email("disabled@demo-msp.example") is None
    assert backend.get_ticket("1003").assignee is None
    assignee = backend.get_ticket("1002").assignee
    assert assignee == PSAUser(ref="4", name="Alice Smith")
    assert [u.ref for u in backend.list_users()] == ["4", "3", "5"]  # Alice, John, Time

    end = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=5)
    entry = EntryToPost(
        ticket_id="1002",
        user=assignee,
        start=end - dt.timedelta(minutes=20),
        end=end,
        notes="Onboarded the user.\npiadesk-run:live-1",
        reference="piadesk-run:live-1",
        log_as="assignee",
    )
    result = backend.post_time_entry(entry)

    assert result.psa_entry_id == "1002/2"
    stored = SandboxTimeEntry.objects.get()
    assert (stored.member.member_id, stored.ticket.ticket_id) == (4, 1002)
    assert stored.time_end - stored.time_start == dt.timedelta(minutes=20)
    assert stored.payload["timetaken"] == 0.3333
    # Within the read lag the action is not visible yet; without lag it is found.
    assert backend.find_entry_by_reference("1002", "piadesk-run:live-1") is None
    set_options(account, read_lag_seconds=0)
    assert backend.find_entry_by_reference("1002", "piadesk-run:live-1") == "1002/2"
    # A refusal in one of Halo's shapes (a bare JSON string) reaches staff as Halo said it.
    with pytest.raises(UserError, match="agent 6 does not exist or is disabled"):
        backend.post_time_entry(dataclasses.replace(entry, user=PSAUser(ref="6")))
    # One token served every call.
    assert sum(x.url.endswith("/auth/token?tenant=demo") for x in http.exchanges) == 1
    assert DEMO_HALO_CLIENT_SECRET not in json.dumps([x.__dict__ for x in http.exchanges])
