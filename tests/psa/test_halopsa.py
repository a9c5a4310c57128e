"""HaloPSA backend: token, classification, payloads (checked against Halo's spec), reads.

HaloPSA's own rules and requests; what every backend does is in test_backend_contract.py.
HTTP is mocked at the network edge with ``responses``; none of these tests touches the database.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from responses import matchers

from psa import halopsa
from psa.base import (
    ConfigurationError,
    ConnectionConfig,
    EntryToPost,
    ErrorScope,
    FoundEntry,
    NotFoundError,
    PermanentError,
    PostResult,
    PSAUser,
    RetryableError,
    Ticket,
    UnknownOutcomeError,
    UserError,
)
from psa.halopsa import (
    HaloPSABackend,
    build_action_payload,
    classify_response,
    halo_message,
    parse_halo_datetime,
)
from psa.http import PSASession, Response
from tests.psa.contract import HALOPSA_SPEC, assert_matches_schema, schema_errors

AUTH = "https://acme.halopsa.com/auth"
API = "https://acme.halopsa.com/api"
TOKEN_URL = f"{AUTH}/token"
UTC = dt.UTC
DENIED = {"Message": "Authorization has been denied for this request."}
AGENT_5 = {"id": 5, "name": "Time Logging", "email": "timelogging@x.y", "isdisabled": False}


def make_backend(cache, secret: str = "s3cret-value", **settings) -> HaloPSABackend:
    config = ConnectionConfig(
        vendor="halopsa",
        settings={
            "auth_url": AUTH + "/",  # normalised by the backend
            "resource_url": API,
            "halo_tenant": "acme",
            "client_id": "client-1",
            **settings,
        },
        secrets={"client_secret": secret},
        cache_key="conn-7",
    )
    return HaloPSABackend(config, http=PSASession(secrets=[secret]), cache=cache)


@pytest.fixture
def backend(fake_cache):
    return make_backend(fake_cache)


def token_answer(rsps, token: str = "tok-1", expires_in: int = 3600) -> None:
    rsps.post(
        TOKEN_URL, json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    )


@pytest.fixture
def api(rsps):
    """The mock with one token answer registered."""
    token_answer(rsps)
    return rsps


def calls(rsps) -> list[str]:
    return [f"{c.request.method} {c.request.url.split('?')[0]}" for c in rsps.calls]


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 5, 1, hour, minute, tzinfo=UTC)


def make_entry(**changes) -> EntryToPost:
    values = {
        "ticket_id": "1001",
        "user": PSAUser(ref="3", name="John Doe"),
        "start": at(14, 0),
        "end": at(14, 30),
        "notes": "Reset the password.\npiadesk-run:run-1",
        "reference": "piadesk-run:run-1",
    }
    return EntryToPost(**{**values, **changes})


def sent_actions(rsps) -> list[dict]:
    """Every action posted, each checked against the spec's ``Actions`` schema."""
    actions = []
    for call in rsps.calls:
        if call.request.method == "POST" and call.request.url.startswith(f"{API}/Actions"):
            body = json.loads(call.request.body)
            assert isinstance(body, list), "POST Actions takes an array"
            for action in body:
                assert_matches_schema(action, "Actions", spec=HALOPSA_SPEC)
            actions.extend(body)
    return actions


# --- error classification ---------------------------------------------------------------------
SHAPES = {
    "string": '"Please choose a valid ticket."',
    "error": '{"error": "Something failed"}',
    "oauth": '{"error": "invalid_client", "error_description": "Client is unknown"}',
    "dotnet": '{"ClassName": "System.Exception", "Message": "Ticket is closed"}',
    "message": '{"message": "Record is locked"}',
    "Message": '{"Message": "Record is locked"}',
    "errors": '{"errors": ["Error converting value 36."]}',
    "text": "Plain text failure",
    "html": "<html><body>Bad gateway</body></html>",
    "empty": "",
}

CASES = [
    # status, shape, operation, expected class (None: success)
    (200, "message", "read", None),
    (201, "message", "create", None),
    (204, "empty", "read", None),
    *[(401, "Message", op, ConfigurationError) for op in ("read", "create")],
    *[(403, s, op, ConfigurationError) for s in ("dotnet", "text") for op in ("read", "create")],
    *[
        (404, s, op, NotFoundError)
        for s in ("string", "message", "html")
        for op in ("read", "create")
    ],
    (429, "text", "create", RetryableError),
    *[
        (400, s, op, PermanentError)
        for s in ("string", "error", "dotnet", "message", "Message", "errors", "text", "empty")
        for op in ("read", "create")
    ],
    (422, "dotnet", "create", PermanentError),
    (409, "message", "create", PermanentError),
    (500, "dotnet", "read", RetryableError),
    (500, "dotnet", "create", UnknownOutcomeError),
    (500, "string", "create", UnknownOutcomeError),
    (502, "html", "read", RetryableError),
    (502, "html", "create", UnknownOutcomeError),
    (504, "text", "create", UnknownOutcomeError),
    (405, "Message", "read", PermanentError),
]


@pytest.mark.parametrize(("status", "shape", "operation", "expected"), CASES)
def test_classify_response(status, shape, operation, expected):
    text = SHAPES[shape]
    response = Response(status, {"Retry-After": "30", "Location": "https://x/"}, text)
    error = classify_response(response, operation=operation)
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error.status == status
    assert error.body == text
    assert error.message.startswith("HaloPSA")


@pytest.mark.parametrize(
    ("body", "operation", "expected"),
    [
        (
            '{"ClassName": "System.Exception", "Message": "The timeout period elapsed"}',
            "read",
            RetryableError,
        ),
        (
            '{"ClassName": "System.Exception", "Message": "The timeout period elapsed"}',
            "create",
            UnknownOutcomeError,
        ),
        ('"Execution Timeout Expired."', "create", UnknownOutcomeError),
    ],
)
def test_classify_500_timeouts(body, operation, expected):
    assert type(classify_response(Response(500, {}, body), operation=operation)) is expected


@pytest.mark.parametrize(
    "body",
    [
        '"Please choose an outcome for the action."',
        '{"ClassName": "HaloException", "Message": "Outcome \'Automation\' does not exist"}',
        '{"message": "Invalid outcome_id 99"}',
    ],
)
def test_an_outcome_refusal_is_a_configuration_error(body):
    error = classify_response(Response(400, {}, body), operation="create")
    assert type(error) is ConfigurationError
    assert "Set a valid Outcome" in error.message


@pytest.mark.parametrize(
    "body",
    ['"who_agentid: agent 6 does not exist or is disabled."', '{"message": "Agent is inactive"}'],
)
def test_an_agent_refusal_fails_the_users_entries_not_the_connection(body):
    error = classify_response(Response(400, {}, body), operation="create")
    assert type(error) is UserError
    assert "user mapping" in error.message


def test_classify_messages_carry_halos_words_and_advice():
    forbidden = classify_response(Response(403, {}, SHAPES["dotnet"]), operation="create")
    assert "Ticket is closed" in forbidden.message
    assert "permissions" in forbidden.message and "agents" in forbidden.message
    refused = classify_response(Response(400, {}, SHAPES["string"]), operation="create")
    assert refused.message == "HaloPSA refused the request (400): Please choose a valid ticket."


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ("string", "Please choose a valid ticket."),
        ("error", "Something failed"),
        ("oauth", "invalid_client: Client is unknown"),
        ("dotnet", "Ticket is closed"),
        ("message", "Record is locked"),
        ("Message", "Record is locked"),
        ("errors", "Error converting value 36."),
        ("text", "Plain text failure"),
        ("html", ""),
        ("empty", ""),
    ],
)
def test_halo_message_reads_every_shape(shape, words):
    assert halo_message(Response(400, {}, SHAPES[shape])) == words


def test_halo_message_odd_shapes():
    assert halo_message(Response(400, {}, '{"error": {"error_description": "nested"}}')) == (
        "nested"
    )
    assert halo_message(Response(400, {}, '{"Field": "only one key"}')) == "only one key"
    assert halo_message(Response(400, {}, '{"ClassName": "X.Y"}')) == "X.Y"
    assert halo_message(Response(400, {}, "true")) == ""
    assert len(halo_message(Response(400, {}, json.dumps("x" * 5000)))) == 300


# --- the token --------------------------------------------------------------------------------
def test_the_token_request_is_the_client_credentials_form(api, backend):
    api.get(f"{API}/Agent/5", json=AGENT_5)

    assert backend.get_user("5").name == "Time Logging"

    token_call, me_call = api.calls
    assert token_call.request.url == f"{TOKEN_URL}?tenant=acme"
    assert token_call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_call.request.body) == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-1"],
        "client_secret": ["s3cret-value"],
        "scope": ["all"],
    }
    assert me_call.request.headers["Authorization"] == "Bearer tok-1"
    assert me_call.request.headers["Accept"] == "application/json"


def test_without_a_tenant_no_tenant_parameter_is_sent(rsps, fake_cache):
    token_answer(rsps)
    rsps.get(f"{API}/Agent/5", json=AGENT_5)

    make_backend(fake_cache, halo_tenant="").get_user("5")

    assert rsps.calls[0].request.url == TOKEN_URL


def test_one_token_serves_several_calls_and_backends(api, fake_cache):
    api.get(f"{API}/Agent/5", json=AGENT_5)
    api.get(f"{API}/Tickets/1001", json={"id": 1001, "agent_id": 3})

    make_backend(fake_cache).get_user("5")
    make_backend(fake_cache).get_ticket("1001")
    make_backend(fake_cache).get_user("5")

    assert calls(api).count(f"POST {TOKEN_URL}") == 1
    assert len(api.calls) == 4


def test_the_cached_token_is_encrypted_and_kept_until_a_minute_before_expiry(api, fake_cache):
    api.get(f"{API}/Agent/5", json=AGENT_5)
    make_backend(fake_cache).get_user("5")

    [(key, value)] = fake_cache.data.items()
    assert key.startswith("psa:halopsa:token:conn-7:")
    assert "tok-1" not in value and "s3cret" not in key
    assert fake_cache.timeouts[key] == 3600 - 60
    # Another secret (a rotated one) neither finds nor can read that token.
    assert make_backend(fake_cache, secret="other")._cached_token() is None


def test_an_expired_token_is_replaced(rsps, fake_cache, monkeypatch):
    token_answer(rsps, "tok-1", expires_in=3600)
    token_answer(rsps, "tok-2", expires_in=3600)
    rsps.get(f"{API}/Agent/5", json=AGENT_5)
    now = 1_000_000.0
    monkeypatch.setattr(halopsa, "_now", lambda: now)
    make_backend(fake_cache).get_user("5")

    now += 3600 - 59  # within the last minute of the token's life: not used any more
    make_backend(fake_cache).get_user("5")

    assert calls(rsps).count(f"POST {TOKEN_URL}") == 2
    assert rsps.calls[-1].request.headers["Authorization"] == "Bearer tok-2"


def test_a_short_lived_token_is_kept_for_half_its_life(rsps, fake_cache):
    token_answer(rsps, expires_in=100)
    rsps.get(f"{API}/Agent/5", json=AGENT_5)
    make_backend(fake_cache).get_user("5")
    assert list(fake_cache.timeouts.values()) == [50]


def test_a_401_refreshes_the_cached_token_once_and_retries(rsps, fake_cache):
    token_answer(rsps, "old")
    token_answer(rsps, "new")
    rsps.get(f"{API}/Agent/5", json=AGENT_5)
    make_backend(fake_cache).get_user("5")  # caches "old"
    rsps.replace("GET", f"{API}/Agent/5", status=401, json=DENIED)
    rsps.add("GET", f"{API}/Agent/5", json=AGENT_5)

    assert make_backend(fake_cache).get_user("5").ref == "5"

    assert calls(rsps) == [
        f"POST {TOKEN_URL}",
        f"GET {API}/Agent/5",
        f"GET {API}/Agent/5",
        f"POST {TOKEN_URL}",
        f"GET {API}/Agent/5",
    ]
    assert rsps.calls[2].request.headers["Authorization"] == "Bearer old"
    assert rsps.calls[4].request.headers["Authorization"] == "Bearer new"


def test_a_second_401_after_the_refresh_is_a_configuration_error(rsps, fake_cache):
    token_answer(rsps, "old")
    token_answer(rsps, "new")
    rsps.get(f"{API}/Agent/5", json=AGENT_5)
    make_backend(fake_cache).get_user("5")
    rsps.replace("GET", f"{API}/Agent/5", status=401, json=DENIED)

    with pytest.raises(ConfigurationError, match="Authorization has been denied") as exc:
        make_backend(fake_cache).get_user("5")

    assert exc.value.status == 401
    assert calls(rsps).count(f"POST {TOKEN_URL}") == 2  # one refresh, never a third token
    assert fake_cache.data == {}  # the refused token is not kept


def test_a_401_with_a_fresh_token_is_not_retried(rsps, backend):
    token_answer(rsps)
    rsps.get(f"{API}/Agent/5", status=401, json=DENIED)

    with pytest.raises(ConfigurationError):
        backend.get_user("5")

    assert calls(rsps) == [f"POST {TOKEN_URL}", f"GET {API}/Agent/5"]


def test_a_401_on_create_refreshes_and_posts_once_more(rsps, fake_cache):
    token_answer(rsps, "old")
    token_answer(rsps, "new")
    rsps.get(f"{API}/Agent/5", json=AGENT_5)
    make_backend(fake_cache).get_user("5")
    rsps.post(f"{API}/Actions", status=401, json=DENIED)
    rsps.post(f"{API}/Actions", json={"id": 2, "ticket_id": 1001})

    result = make_backend(fake_cache).post_time_entry(make_entry())

    assert result.psa_entry_id == "1001/2"
    assert len(sent_actions(rsps)) == 2  # the refused one and the retry, identical
    assert calls(rsps).count(f"POST {TOKEN_URL}") == 2


@pytest.mark.parametrize(
    ("status", "body", "expected", "words"),
    [
        (401, {"error": "invalid_client"}, ConfigurationError, "invalid_client"),
        (400, {"error": "invalid_scope"}, ConfigurationError, "invalid_scope"),
        (
            400,
            {"error": "invalid_request", "error_description": "Unknown tenant"},
            ConfigurationError,
            "invalid_request: Unknown tenant",
        ),
        (403, "Application disabled", ConfigurationError, "Application disabled"),
        (404, "<html>Not found</html>", ConfigurationError, "Authorisation server address"),
        (200, "<html>Log in</html>", ConfigurationError, "Authorisation server address"),
        (200, {"token_type": "Bearer"}, ConfigurationError, "Authorisation server address"),
        (429, "", RetryableError, "slow down"),
        (500, {"Message": "An error has occurred."}, RetryableError, "An error has occurred."),
    ],
)
def test_token_failures(rsps, backend, status, body, expected, words):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    rsps.post(TOKEN_URL, status=status, **kwargs)

    with pytest.raises(expected) as exc:
        backend.post_time_entry(make_entry())

    assert words in exc.value.message
    assert len(rsps.calls) == 1  # nothing was posted
    assert "s3cret" not in exc.value.message


def test_exchanges_never_show_the_secret_or_the_token(api, backend):
    api.get(f"{API}/Agent/5", json=AGENT_5)
    backend.get_user("5")
    recorded = json.dumps([x.__dict__ for x in backend.http.exchanges])
    assert "s3cret-value" not in recorded
    assert "tok-1" not in recorded


# --- the action -------------------------------------------------------------------------------
EXPECTED_ACTION = {
    "ticket_id": 1001,
    "who_agentid": 3,
    "outcome": "Automation",
    "note": "Reset the password.\npiadesk-run:run-1",
    "actionarrivaldate": "2026-05-01T14:00:00Z",
    "actioncompletiondate": "2026-05-01T14:30:00Z",
    "timetaken": 0.5,
    "hiddenfromuser": True,
    "sendemail": False,
}


def test_payload_is_exact_and_matches_the_spec():
    payload = build_action_payload(make_entry(), outcome="Automation")
    assert payload == EXPECTED_ACTION
    assert list(payload) == list(EXPECTED_ACTION)
    assert schema_errors(payload, "Actions", spec=HALOPSA_SPEC) == []


def test_payload_with_an_outcome_id_and_odd_durations():
    entry = make_entry(start=at(14, 0), end=dt.datetime(2026, 5, 1, 14, 7, 20, tzinfo=UTC))
    payload = build_action_payload(entry, outcome="Remote Work", outcome_id=12)
    assert payload["outcome"] == "Remote Work"
    assert payload["outcome_id"] == 12
    assert payload["timetaken"] == 0.1222  # 7 min 20 s in hours, four places
    assert schema_errors(payload, "Actions", spec=HALOPSA_SPEC) == []


def test_payload_times_are_converted_to_utc():
    plus2 = dt.timezone(dt.timedelta(hours=2))
    entry = make_entry(
        start=dt.datetime(2026, 5, 1, 16, 0, tzinfo=plus2),
        end=dt.datetime(2026, 5, 1, 16, 20, tzinfo=plus2),
    )
    payload = build_action_payload(entry, outcome="Automation")
    assert (payload["actionarrivaldate"], payload["actioncompletiondate"]) == (
        "2026-05-01T14:00:00Z",
        "2026-05-01T14:20:00Z",
    )


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"timetaken": "abc"}, "timetaken: 'abc' is not of type"),
        ({"ticket_id": "1001"}, "ticket_id: '1001' is not of type"),
        ({"actionarrivaldate": "2026-05-01 14:00"}, "is not a 'date-time'"),
        ({"who_agentid": 2**31}, "who_agentid"),  # int32
        ({"who_agent_id": 3}, "'who_agent_id' was unexpected"),  # a misspelt field
    ],
)
def test_contract_rejects_bad_actions(change, complaint):
    errors = schema_errors({**EXPECTED_ACTION, **change}, "Actions", spec=HALOPSA_SPEC)
    assert any(complaint in e for e in errors), errors


# Each "log time entries as" choice arrives as a PSAUser: the action differs only in the agent.
LOG_AS = [
    ("starter", PSAUser(ref="3", name="John Doe", email="john.doe@demo-msp.example"), 3, None),
    ("assignee", PSAUser(ref="4", name="Alice Smith"), 4, Ticket(id="1001", assignee=None)),
    ("specified", PSAUser(ref="5", name="Time Logging"), 5, None),
]


@pytest.mark.parametrize(("log_as", "user", "agent_id", "ticket"), LOG_AS)
def test_post_time_entry_sends_one_action_per_log_as_choice(
    api, backend, log_as, user, agent_id, ticket
):
    api.post(f"{API}/Actions", json={"id": 7, "ticket_id": 1001, "who_agentid": agent_id})

    result = backend.post_time_entry(make_entry(user=user, log_as=log_as, ticket=ticket))

    assert result == PostResult(psa_entry_id="1001/7", start=at(14, 0), end=at(14, 30))
    assert sent_actions(api) == [{**EXPECTED_ACTION, "who_agentid": agent_id}]
    assert api.calls[1].request.headers["Content-Type"] == "application/json"


def test_post_time_entry_with_a_configured_outcome(api, fake_cache):
    api.post(f"{API}/Actions", json=[{"id": 3, "ticket_id": 1001}])  # a list holding it
    backend = make_backend(fake_cache, outcome="Remote", outcome_id=9)

    assert backend.post_time_entry(make_entry()).psa_entry_id == "1001/3"

    [action] = sent_actions(api)
    assert (action["outcome"], action["outcome_id"]) == ("Remote", 9)


def test_a_blank_outcome_falls_back_to_automation(api, fake_cache):
    api.post(f"{API}/Actions", json={"id": 3})
    make_backend(fake_cache, outcome="  ").post_time_entry(make_entry())
    assert sent_actions(api)[0]["outcome"] == "Automation"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"id": 0}, UnknownOutcomeError),
        (200, [], UnknownOutcomeError),
        (500, {"ClassName": "System.Exception", "Message": "boom"}, UnknownOutcomeError),
        (400, "Please choose an outcome for the action.", ConfigurationError),
        (400, "who_agentid: agent 6 does not exist or is disabled.", UserError),
        (
            400,
            {"ClassName": "HaloValidationException", "Message": "Ticket 1001 is closed"},
            PermanentError,
        ),
        (404, {"message": "Ticket 1001 not found."}, NotFoundError),
    ],
)
def test_post_time_entry_failures(api, backend, status, body, expected):
    kwargs = {"body": body} if isinstance(body, str) else {"json": body}
    api.post(f"{API}/Actions", status=status, **kwargs)
    with pytest.raises(expected):
        backend.post_time_entry(make_entry())
    sent_actions(api)  # what was sent still matches the spec


@pytest.mark.parametrize("ref", ["jdoe", "", "1", "-3"])
def test_an_agent_ref_halo_cannot_take_is_a_user_error_without_a_request(rsps, backend, ref):
    with pytest.raises(UserError, match="user mapping"):
        backend.post_time_entry(make_entry(user=PSAUser(ref=ref)))
    assert not rsps.calls


@pytest.mark.parametrize("ticket_id", ["99999999999"])  # more than Halo's int32 ids
def test_post_refuses_a_non_numeric_ticket_without_a_request(rsps, backend, ticket_id):
    with pytest.raises(PermanentError):
        backend.post_time_entry(make_entry(ticket_id=ticket_id))
    assert not rsps.calls


def test_a_stored_outcome_id_that_is_not_a_number_is_a_configuration_error(rsps, fake_cache):
    backend = make_backend(fake_cache, outcome_id="twelve")
    with pytest.raises(ConfigurationError, match="Outcome ID"):
        backend.post_time_entry(make_entry())
    assert not rsps.calls


def test_the_window_is_not_moved(backend):
    # Halo documents no "no future time" rule (unlike ConnectWise).
    assert backend.adjust_window(at(12, 0), at(12, 30), at(12, 10)) == (at(12, 0), at(12, 30))


# --- agents -----------------------------------------------------------------------------------
def agent(id_, name, email, disabled=False):
    return {"id": id_, "name": name, "email": email, "isdisabled": disabled}


def test_find_user_by_email_matches_exactly_among_fuzzy_results(api, backend):
    api.get(
        f"{API}/Agent",
        json=[
            agent(1, "Unassigned", "john.doe@demo-msp.example"),  # the placeholder
            agent(2, "John Doe (old)", "John.Doe@demo-msp.example", disabled=True),
            agent(7, "Johnny Doe", "john.doe@demo-msp.example.au"),  # a near miss
            agent(3, "John Doe", "John.Doe@Demo-MSP.example"),
            agent(8, "Jon Doe", "jon.doe@demo-msp.example"),
        ],
    )

    user = backend.find_user_by_email(" john.doe@demo-msp.example ")

    assert user == PSAUser(ref="3", name="John Doe", email="John.Doe@Demo-MSP.example")
    params = query(api.calls[1])
    assert params == {
        "search": "john.doe@demo-msp.example",
        "includeenabled": "true",
        "includedisabled": "false",
        "pageinate": "true",
        "page_size": "100",
        "page_no": "1",
    }


@pytest.mark.parametrize("email", ["john"])
def test_find_user_by_email_without_an_e_mail_makes_no_request(rsps, backend, email):
    assert backend.find_user_by_email(email) is None
    assert not rsps.calls


def test_agents_wrapped_in_an_object_are_read_too(api, backend):
    api.get(f"{API}/Agent", json={"record_count": 1, "results": [agent(4, "A", "a@b.c")]})
    assert backend.find_user_by_email("a@b.c").ref == "4"


def test_list_users_stops_when_halo_repeats_the_last_page(api, backend):
    first = [agent(i, f"Agent {i:03}", f"a{i}@x.y") for i in range(2, 102)]  # a full page
    second = [agent(i, f"Agent {i:03}", f"a{i}@x.y") for i in range(102, 202)]  # full again
    api.get(
        f"{API}/Agent",
        json=first,
        match=[matchers.query_param_matcher({"page_no": "1"}, strict_match=False)],
    )
    for page in ("2", "3"):  # past the end Halo answers the last page again
        api.get(
            f"{API}/Agent",
            json=second,
            match=[matchers.query_param_matcher({"page_no": page}, strict_match=False)],
        )

    users = backend.list_users(search=" agent ")

    assert [u.ref for u in users] == [str(i) for i in range(2, 202)]
    assert len(api.calls) == 1 + 3
    assert query(api.calls[1])["search"] == "agent"


def test_list_users_stops_after_a_short_page_and_sorts_by_name(api, backend):
    api.get(
        f"{API}/Agent",
        json=[
            agent(5, "Zed", "z@x.y"),
            agent(6, "Gone", "g@x.y", disabled=True),
            agent(4, "amy", "a@x.y"),
            {"id": 9, "firstname": "Bob", "surname": "Brown", "email": "b@x.y"},
            agent(1, "Unassigned", ""),
            {"name": "no id"},
        ],
    )

    users = backend.list_users()

    assert [(u.ref, u.name) for u in users] == [("4", "amy"), ("9", "Bob Brown"), ("5", "Zed")]
    assert len(api.calls) == 2
    assert "search" not in query(api.calls[1])


def test_list_users_is_capped(api, backend):
    def page(request):
        number = int(query_of(request)["page_no"])
        rows = [agent(number * 1000 + i, "A", "a@x.y") for i in range(100)]
        return 200, {}, json.dumps(rows)

    api.add_callback("GET", f"{API}/Agent", callback=page)

    assert len(backend.list_users()) == 5000
    assert len(api.calls) == 1 + 50


def query_of(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def test_get_user(api, backend):
    api.get(f"{API}/Agent/4", json=agent(4, "Alice Smith", "alice@x.y"))
    assert backend.get_user("4") == PSAUser(ref="4", name="Alice Smith", email="alice@x.y")


def test_get_user_unknown_is_not_found(api, backend):
    api.get(f"{API}/Agent/99", status=404, json="Agent 99 not found.")
    with pytest.raises(NotFoundError, match="HaloPSA has no agent 99"):
        backend.get_user("99")


@pytest.mark.parametrize("ref", ["jdoe", "1", ""])
def test_get_user_that_cannot_be_an_agent_is_not_found_without_a_request(rsps, backend, ref):
    with pytest.raises(NotFoundError):
        backend.get_user(ref)
    assert not rsps.calls


OUTCOMES = [
    {"id": 1, "outcome": "Note"},
    {"id": 12, "outcome": "Automation", "hidden": True},
    {"id": 13, "outcome": "Remote Work"},
]


def test_check_connection_names_the_agent_and_the_outcome(api, backend):
    api.get(f"{API}/Agent/me", json={"id": 5, "name": "Time Logging"})
    api.get(f"{API}/Outcome", json=OUTCOMES)

    assert backend.check_connection() == (
        "Connected to HaloPSA as Time Logging (tenant acme); outcome “Automation” found"
    )
    assert query(api.calls[2]) == {"showhidden": "true"}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"halo_tenant": "", "outcome": "remote work"}, "as agent 12; outcome “Remote Work” found"),
        (
            {"outcome": "ignored", "outcome_id": 1},
            "as agent 12 (tenant acme); outcome “Note” found",
        ),
    ],
)
def test_check_connection_matches_the_outcome_by_name_or_id(rsps, fake_cache, settings, expected):
    token_answer(rsps)
    rsps.get(f"{API}/Agent/me", json={"id": 12})
    rsps.get(f"{API}/Outcome", json=OUTCOMES)

    assert make_backend(fake_cache, **settings).check_connection().endswith(expected)


@pytest.mark.parametrize(
    ("settings", "wanted"), [({"outcome": "Scripted"}, "“Scripted”"), ({"outcome_id": 99}, "id 99")]
)
def test_check_connection_with_an_unknown_outcome_is_a_configuration_error(
    rsps, fake_cache, settings, wanted
):
    token_answer(rsps)
    rsps.get(f"{API}/Agent/me", json={"id": 12})
    rsps.get(f"{API}/Outcome", json=OUTCOMES)

    with pytest.raises(ConfigurationError) as exc:
        make_backend(fake_cache, **settings).check_connection()

    assert exc.value.message == (
        f"HaloPSA has no action outcome {wanted} (it has: Note (1), Automation (12), "
        "Remote Work (13)). Set a valid Outcome (or Outcome ID) on the HaloPSA connection."
    )


def test_check_connection_without_outcome_access(api, backend):
    api.get(f"{API}/Agent/me", json={"id": 12})
    api.get(f"{API}/Outcome", status=403, json={"message": "Permission denied"})
    with pytest.raises(ConfigurationError, match="Permission denied"):
        backend.check_connection()


def test_halo_reads_lag_so_look_ups_wait():
    assert HaloPSABackend.read_after_write_seconds >= 3  # the sandbox's default lag


# --- tickets ----------------------------------------------------------------------------------
def test_get_ticket_with_an_agent(api, backend):
    api.get(
        f"{API}/Tickets/1001",
        json={"id": 1001, "agent_id": 3, "agent_name": "John Doe", "dateoccurred": "2026-05-01"},
    )
    ticket = backend.get_ticket("1001")
    assert ticket == Ticket(
        id="1001", assignee=PSAUser(ref="3", name="John Doe"), extra={"agent_id": 3}
    )


def test_get_ticket_agent_without_a_name_has_no_name(api, backend):
    # Not the id posing as a name (issue 11): posting looks the name up.
    api.get(f"{API}/Tickets/1001", json={"id": 1001, "agent_id": 4})
    assert backend.get_ticket("1001").assignee == PSAUser(ref="4", name="")


@pytest.mark.parametrize(
    "body",
    [
        {"id": 1003, "agent_id": 1, "agent_name": "Unassigned"},  # Halo's placeholder
        {"id": 1003, "agent_id": 0},
        {"id": 1003},
    ],
)
def test_get_ticket_unassigned(api, backend, body):
    api.get(f"{API}/Tickets/1003", json=body)
    assert backend.get_ticket("1003").assignee is None


@pytest.mark.parametrize(("status", "body"), [(200, {"id": 0})])
def test_get_ticket_unknown_is_not_found(api, backend, status, body):
    api.get(f"{API}/Tickets/9", status=status, json=body)
    with pytest.raises(NotFoundError, match="HaloPSA has no ticket #9"):
        backend.get_ticket("9")


def test_get_ticket_answered_with_something_else_is_permanent(api, backend):
    api.get(f"{API}/Tickets/1001", body="<html>maintenance</html>")
    with pytest.raises(PermanentError):
        backend.get_ticket("1001")


# --- finding our action after an unknown outcome ----------------------------------------------
def test_find_entry_by_reference(api, backend):
    api.get(
        f"{API}/Actions",
        json={
            "record_count": 3,
            "actions": [
                {"id": 1, "ticket_id": 1001, "note": "Ticket opened"},
                {"id": 2, "ticket_id": 1001, "note": None},
                {"id": 5, "ticket_id": 1001, "note": "Reset. piadesk-run:run-1"},
            ],
        },
    )

    assert backend.find_entry_by_reference("1001", "piadesk-run:run-1") == "1001/5"
    assert query(api.calls[1]) == {"ticket_id": "1001", "count": "5000"}


def test_find_entry_by_reference_accepts_a_bare_array(api, backend):
    api.get(f"{API}/Actions", json=[{"id": 4, "note": "piadesk-run:run-1"}])
    assert backend.find_entry_by_reference("1001", "piadesk-run:run-1") == "1001/4"


def test_find_entry_by_reference_on_an_unknown_ticket(api, backend):
    api.get(f"{API}/Actions", status=404, json={"message": "Ticket 9 not found."})
    with pytest.raises(NotFoundError, match="#9"):
        backend.find_entry_by_reference("9", "piadesk-run:run-1")


# --- datetimes --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-05-01T14:00:00", dt.datetime(2026, 5, 1, 14, 0, tzinfo=UTC)),
        ("2026-05-01T14:00:00.1234567", dt.datetime(2026, 5, 1, 14, 0, 0, 123456, tzinfo=UTC)),
        ("2026-05-01T14:00:00Z", dt.datetime(2026, 5, 1, 14, 0, tzinfo=UTC)),
        ("2026-05-01T16:00:00+02:00", dt.datetime(2026, 5, 1, 14, 0, tzinfo=UTC)),
        ("1900-01-01T00:00:00", None),
        ("1899-12-30T00:00:00", None),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_parse_halo_datetime(raw, expected):
    parsed = parse_halo_datetime(raw)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is UTC


# --- configuration ----------------------------------------------------------------------------
VALID = {"auth_url": AUTH, "resource_url": API, "client_id": "client-1"}
SECRETS = {"client_secret": "s"}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"halo_tenant": "acme"},
        {"outcome": "Remote Work", "outcome_id": 12},
        {"outcome_id": "12"},
        {"auth_url": "http://localhost:8000/sandbox/halopsa/auth"},
        {"resource_url": "http://127.0.0.1:8000/sandbox/halopsa/api/"},
    ],
)
def test_validate_config_accepts(changes):
    assert HaloPSABackend.validate_config({**VALID, **changes}, SECRETS) == {}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"auth_url": "http://acme.halopsa.com/auth"}, "auth_url", "https://"),
        ({"resource_url": "acme.halopsa.com/api"}, "resource_url", "full address"),
        ({"auth_url": "https://acme.halopsa.com/auth?tenant=acme"}, "auth_url", "query string"),
        ({"auth_url": "https://acme.halopsa.com/auth/token"}, "auth_url", "Leave /token out"),
        ({"resource_url": "https://u:p@acme.halopsa.com/api"}, "resource_url", "user name"),
        ({"halo_tenant": "acme corp"}, "halo_tenant", "tenant name only"),
        ({"halo_tenant": "acme&x=1"}, "halo_tenant", "tenant name only"),
        ({"outcome_id": 0}, "outcome_id", "whole number"),
        ({"outcome_id": "twelve"}, "outcome_id", "whole number"),
        ({"outcome_id": True}, "outcome_id", "whole number"),
    ],
)
def test_validate_config_refuses(changes, field, words):
    errors = HaloPSABackend.validate_config({**VALID, **changes}, SECRETS)
    assert set(errors) == {field}
    assert words in errors[field]


def test_config_fields():
    fields = {f.name: f for f in HaloPSABackend.config_fields}
    assert list(fields) == [
        "auth_url",
        "resource_url",
        "halo_tenant",
        "client_id",
        "client_secret",
        "outcome",
        "outcome_id",
    ]
    assert [n for n, f in fields.items() if f.secret] == ["client_secret"]
    assert [n for n, f in fields.items() if not f.required] == [
        "halo_tenant",
        "outcome",
        "outcome_id",
    ]
    assert (fields["auth_url"].kind, fields["outcome_id"].kind) == ("url", "int")


def test_find_entry_reads_the_window_halo_holds(api, backend):
    api.get(
        f"{API}/Actions",
        json={
            "actions": [
                {
                    "id": 5,
                    "note": "Reset. piadesk-run:run-1",
                    "actionarrivaldate": "2026-05-01T13:50:00",
                    "actioncompletiondate": "2026-05-01T14:10:00.1234567",
                }
            ]
        },
    )
    found = backend.find_entry("1001", "piadesk-run:run-1")
    assert found == FoundEntry(
        "1001/5",
        start=dt.datetime(2026, 5, 1, 13, 50, tzinfo=dt.UTC),
        end=dt.datetime(2026, 5, 1, 14, 10, 0, 123456, tzinfo=dt.UTC),
    )


# --- whose problem (issue 11) -----------------------------------------------------------------
WHOSE = [
    # status, body, operation, whose problem
    (401, SHAPES["empty"], "read", ErrorScope.CONNECTION),
    (403, SHAPES["message"], "create", ErrorScope.CONNECTION),
    (400, '"Please choose a valid outcome."', "create", ErrorScope.CONNECTION),
    (400, '"Invalid who_agentid: agent 42 is inactive."', "create", ErrorScope.USER),
    (400, '"The agent does not exist."', "create", ErrorScope.USER),
    (400, SHAPES["string"], "create", ErrorScope.ENTRY),
    (404, SHAPES["empty"], "read", ErrorScope.ENTRY),
    (429, SHAPES["empty"], "create", ErrorScope.PASSING),
    (503, SHAPES["html"], "read", ErrorScope.PASSING),
    (500, SHAPES["empty"], "create", ErrorScope.PASSING),
]


@pytest.mark.parametrize(("status", "body", "operation", "whose"), WHOSE)
def test_whose_problem(status, body, operation, whose):
    error = classify_response(Response(status, {}, body), operation=operation)
    assert error.scope == whose


def test_a_non_numeric_agent_is_one_users_problem(rsps, backend):
    with pytest.raises(UserError) as exc:
        backend.post_time_entry(make_entry(user=PSAUser(ref="jdoe")))
    assert exc.value.scope == ErrorScope.USER
