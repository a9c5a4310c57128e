"""ConnectWise backend: classification, discovery, auth, payloads, reads; HTTP mocked at the edge.

ConnectWise's own rules and requests; what every backend does is in test_backend_contract.py.
None of these tests touches the database.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from responses import matchers

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
    UnknownOutcomeError,
    UserError,
)
from psa.connectwise import (
    ConnectWiseBackend,
    build_time_entry_payload,
    classify_response,
    normalise_site_url,
)
from psa.http import PSASession, Response
from tests.psa.contract import CONNECTWISE_SPEC, HALOPSA_SPEC, load_schemas, schema_errors

SITE = "https://cw.example.com"
COMPANYINFO = f"{SITE}/login/companyinfo/acme"
API = f"{SITE}/v2025_1/apis/3.0/"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
UTC = dt.UTC


def make_backend(cache, **settings) -> ConnectWiseBackend:
    config = ConnectionConfig(
        vendor="connectwise",
        settings={
            "site_url": SITE + "/",  # normalised by the backend
            "company_id": "acme",
            "public_key": "pub",
            "client_id": CLIENT_ID,
            **settings,
        },
        secrets={"private_key": "priv"},
        cache_key="conn-1",
    )
    return ConnectWiseBackend(config, http=PSASession(), cache=cache)


@pytest.fixture
def backend(fake_cache):
    return make_backend(fake_cache)


@pytest.fixture
def api(rsps):
    """The mock with the company info answer registered."""
    rsps.get(COMPANYINFO, json={"CompanyName": "Acme", "Codebase": "v2025_1/"})
    return rsps


def urls(rsps) -> list[str]:
    return [f"{c.request.method} {c.request.url.split('?')[0]}" for c in rsps.calls]


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def at(hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 5, 1, hour, minute, second, tzinfo=UTC)


def make_entry(**changes) -> EntryToPost:
    values = {
        "ticket_id": "69",
        "user": PSAUser(ref="jdoe", name="Jane Doe"),
        "start": at(14, 0),
        "end": at(14, 30),
        "notes": "Patched the server. [piadesk run-1]",
        "reference": "[piadesk run-1]",
    }
    return EntryToPost(**{**values, **changes})


# --- classification -------------------------------------------------------------------------
SECURITY = {"code": "Security", "message": "You do not have security permission to add time."}


def envelope(*errors: tuple[str, str]) -> dict:
    return {
        "code": "InvalidObject",
        "message": "TimeEntry object is invalid",
        "errors": [
            {"code": "InvalidField", "message": m, "resource": "TimeEntry", "field": f}
            for f, m in errors
        ],
    }


FUTURE = envelope(("timeEnd", "Time entries cannot be entered in the future."))
MEMBER = envelope(("member", "Member is inactive."))
INVALID = envelope(("timeStart", "Time start is required."), ("notes", "Notes too long."))

CASES = [
    # status, body, operation, expected error class (None = success)
    (200, {"id": 1}, "read", None),
    (201, {"id": 1}, "create", None),
    (204, "", "read", None),
    (403, SECURITY, "create", ConfigurationError),
    (403, SECURITY, "read", ConfigurationError),
    (404, {"code": "NotFound", "message": "Ticket not found"}, "read", NotFoundError),
    (429, "slow down", "read", RetryableError),
    (429, "slow down", "create", RetryableError),
    (400, FUTURE, "create", RetryableError),
    (400, MEMBER, "create", UserError),
    (400, INVALID, "create", PermanentError),
    (422, INVALID, "create", PermanentError),
    (400, "not json", "read", PermanentError),
    (500, {"message": "The operation timed out"}, "read", RetryableError),
    (500, {"message": "The operation timed out"}, "create", UnknownOutcomeError),
    (500, "Execution Timeout Expired", "create", UnknownOutcomeError),
    (500, {"message": "Object reference not set"}, "read", RetryableError),
    (500, {"message": "Object reference not set"}, "create", UnknownOutcomeError),
    (405, "Method not allowed", "read", PermanentError),
    (409, {"message": "Conflict"}, "create", PermanentError),
]


@pytest.mark.parametrize(("status", "body", "operation", "expected"), CASES)
def test_classify_response(status, body, operation, expected):
    text = body if isinstance(body, str) else json.dumps(body)
    response = Response(status, {"Retry-After": "30", "Location": "https://x/"}, text)
    error = classify_response(response, operation=operation)
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error.status == status
    assert error.body == text
    assert error.message


def test_classify_messages_say_what_connectwise_said():
    invalid = classify_response(Response(400, {}, json.dumps(INVALID)), operation="create")
    assert "timeStart: Time start is required.; notes: Notes too long." in invalid.message
    security = classify_response(Response(403, {}, json.dumps(SECURITY)), operation="read")
    assert "You do not have security permission to add time." in security.message
    assert "Time Entry" in security.message and "System Members" in security.message
    unauthorized = classify_response(Response(401, {}, ""), operation="read")
    assert "check the company id, public and private key" in unauthorized.message


# --- codebase discovery -----------------------------------------------------------------------
def test_codebase_is_cached_across_backends(api, fake_cache):
    api.get(API + "system/info", json={"version": "v2025.1"})
    make_backend(fake_cache).check_connection()
    make_backend(fake_cache).check_connection()
    assert urls(api) == [f"GET {COMPANYINFO}", f"GET {API}system/info", f"GET {API}system/info"]
    [(key, value)] = fake_cache.data.items()
    assert key.startswith("psa:connectwise:codebase:conn-1:")
    assert value == "v2025_1/"
    assert fake_cache.timeouts[key] == 24 * 3600


@pytest.mark.parametrize("body", ["null", "{}", '{"Codebase": ""}', '{"Codebase": null}'])
def test_unknown_company_is_a_configuration_error(rsps, backend, body):
    rsps.get(COMPANYINFO, body=body, content_type="application/json")
    with pytest.raises(ConfigurationError) as exc:
        backend.check_connection()
    assert exc.value.message == (
        "ConnectWise does not know company id 'acme' at https://cw.example.com: "
        "check the Company ID"
    )
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, "<html>Not here</html>", ConfigurationError),  # not a ConnectWise site
        (200, "<html>Login</html>", ConfigurationError),
        (200, {"Codebase": "../../evil/"}, ConfigurationError),  # never put that in a path
        (503, "", RetryableError),
        (429, "", RetryableError),
    ],
)
def test_company_info_failures(rsps, backend, status, body, expected):
    kwargs = {"body": body} if isinstance(body, str) else {"json": body}
    rsps.get(COMPANYINFO, status=status, **kwargs)
    with pytest.raises(expected):
        backend.check_connection()


def test_stale_codebase_is_looked_up_again_once_and_the_call_retried(api, backend, fake_cache):
    fake_cache.set(backend._codebase_cache_key(), "v2024_1/")
    api.get(f"{SITE}/v2024_1/apis/3.0/system/info", status=404)
    api.get(API + "system/info", json={"version": "v2025.1"})
    assert backend.check_connection().startswith("Connected")
    assert urls(api) == [
        f"GET {SITE}/v2024_1/apis/3.0/system/info",
        f"GET {COMPANYINFO}",
        f"GET {API}system/info",
    ]
    assert fake_cache.data[backend._codebase_cache_key()] == "v2025_1/"


def test_still_404_after_rediscovery_is_not_found(api, backend, fake_cache):
    fake_cache.set(backend._codebase_cache_key(), "v2024_1/")
    api.get(f"{SITE}/v2024_1/apis/3.0/service/tickets/7", status=404)
    api.get(API + "service/tickets/7", status=404)
    with pytest.raises(NotFoundError, match="ConnectWise has no ticket #7"):
        backend.get_ticket("7")
    assert len(api.calls) == 3  # old 404, company info, one retry; no more


def test_404_with_unchanged_codebase_is_not_retried(api, backend, fake_cache):
    fake_cache.set(backend._codebase_cache_key(), "v2025_1/")
    api.get(API + "service/tickets/7", status=404)
    with pytest.raises(NotFoundError):
        backend.get_ticket("7")
    assert urls(api) == [f"GET {API}service/tickets/7", f"GET {COMPANYINFO}"]


def test_404_right_after_discovery_does_not_look_up_again(api, backend):
    api.get(API + "service/tickets/7", status=404)
    with pytest.raises(NotFoundError):
        backend.get_ticket("7")
    assert urls(api) == [f"GET {COMPANYINFO}", f"GET {API}service/tickets/7"]


# --- auth ---------------------------------------------------------------------------------------
def test_auth_headers_on_api_calls_only(api, backend):
    api.get(API + "system/info", json={})
    backend.check_connection()
    discovery, call = api.calls
    assert "Authorization" not in discovery.request.headers
    assert call.request.headers["Authorization"] == "Basic YWNtZStwdWI6cHJpdg=="  # acme+pub:priv
    assert call.request.headers["clientId"] == CLIENT_ID
    assert call.request.headers["Accept"] == "application/json"


def test_client_id_falls_back_to_django_settings(api, fake_cache, settings):
    settings.CONNECTWISE_CLIENT_ID = "99999999-0000-0000-0000-000000000000"
    api.get(API + "system/info", json={})
    make_backend(fake_cache, client_id="").check_connection()
    assert api.calls[1].request.headers["clientId"] == "99999999-0000-0000-0000-000000000000"


def test_missing_client_id_is_a_configuration_error(rsps, fake_cache, settings):
    settings.CONNECTWISE_CLIENT_ID = ""
    with pytest.raises(ConfigurationError, match="CONNECTWISE_CLIENT_ID"):
        make_backend(fake_cache, client_id="").check_connection()
    assert not rsps.calls


def test_check_connection_describes_what_it_saw(api, backend):
    api.get(API + "system/info", json={"version": "v2025.1", "isCloud": True})
    assert backend.check_connection() == "Connected to ConnectWise PSA v2025.1 (company acme)"


# --- the time entry -----------------------------------------------------------------------------
EXPECTED_PAYLOAD = {
    "chargeToId": 69,
    "chargeToType": "ServiceTicket",
    "member": {"identifier": "jdoe"},
    "timeStart": "2026-05-01T14:00:00Z",
    "timeEnd": "2026-05-01T14:30:00Z",
    "notes": "Patched the server. [piadesk run-1]",
    "addToInternalAnalysisFlag": True,
    "emailResourceFlag": False,
    "emailContactFlag": False,
    "emailCcFlag": False,
}


def test_payload_is_exact():
    payload = build_time_entry_payload(make_entry())
    assert payload == EXPECTED_PAYLOAD
    assert "billableOption" not in payload and "actualHours" not in payload


def test_payload_times_are_converted_to_utc():
    plus2 = dt.timezone(dt.timedelta(hours=2))
    entry = make_entry(
        start=dt.datetime(2026, 5, 1, 16, 0, 5, 123456, tzinfo=plus2),
        end=dt.datetime(2026, 5, 1, 16, 30, tzinfo=plus2),
    )
    payload = build_time_entry_payload(entry)
    assert (payload["timeStart"], payload["timeEnd"]) == (
        "2026-05-01T14:00:05Z",
        "2026-05-01T14:30:00Z",
    )


def test_payload_matches_the_timeentry_schema():
    assert (
        schema_errors(build_time_entry_payload(make_entry()), "TimeEntry", spec=CONNECTWISE_SPEC)
        == []
    )


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"chargeToType": "Nope"}, "chargeToType: 'Nope' is not one of"),
        ({"timeStart": "2026-05-01 14:00"}, "timeStart: '2026-05-01 14:00' is not a 'date-time'"),
        ({"chargeToId": "69"}, "chargeToId: '69' is not of type"),
        ({"chargeToID": 69}, "'chargeToID' was unexpected"),  # a misspelt field
    ],
)
def test_contract_rejects_bad_payloads(change, complaint):
    errors = schema_errors({**EXPECTED_PAYLOAD, **change}, "TimeEntry", spec=CONNECTWISE_SPEC)
    assert any(complaint in e for e in errors), errors


def test_contract_helper_loads_halopsa_by_name_once():
    assert load_schemas(HALOPSA_SPEC) is load_schemas(HALOPSA_SPEC)
    action = {
        "ticket_id": 2267,
        "who_agentid": 3,
        "outcome": "Automation",
        "note": "...",
        "actionarrivaldate": "2026-05-01T14:00:00Z",
        "actioncompletiondate": "2026-05-01T14:30:00Z",
        "timetaken": 0.5,
        "hiddenfromuser": True,
        "sendemail": False,
    }
    assert schema_errors(action, "Actions", spec=HALOPSA_SPEC) == []
    assert schema_errors({**action, "timetaken": "half"}, "Actions", spec=HALOPSA_SPEC)
    # A known $ref target is resolved and enforced (DateTimeZone is an object).
    assert schema_errors({**action, "new_startdate_with_timezone": 5}, "Actions", spec=HALOPSA_SPEC)


def test_post_time_entry_sends_the_payload_and_returns_the_id(api, backend):
    api.post(API + "time/entries", status=201, json={"id": 4711, "actualHours": 0.5})
    result = backend.post_time_entry(make_entry())
    assert result == PostResult(psa_entry_id="4711", start=at(14, 0), end=at(14, 30))
    assert json.loads(api.calls[1].request.body) == EXPECTED_PAYLOAD


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, {"message": "boom"}, UnknownOutcomeError),
        (400, FUTURE, RetryableError),
        (400, MEMBER, UserError),
    ],
)
def test_post_time_entry_failures(api, backend, status, body, expected):
    api.post(API + "time/entries", status=status, json=body)
    with pytest.raises(expected):
        backend.post_time_entry(make_entry())


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        # The lead's example: end moved back to the whole minute, length kept.
        ((at(12, 25), at(12, 45)), at(12, 30, 0), (at(12, 10), at(12, 30))),
        ((at(12, 25), at(12, 45)), at(12, 30, 40), (at(12, 10), at(12, 30))),
        # Already in the past: unchanged.
        ((at(11, 0), at(11, 20)), at(12, 30, 40), (at(11, 0), at(11, 20))),
        # Ending exactly at the latest allowed end: unchanged.
        ((at(12, 10), at(12, 30)), at(12, 30, 59), (at(12, 10), at(12, 30))),
        # Ending within the current minute: moved back to its start.
        ((at(12, 0), at(12, 30, 20)), at(12, 30, 40), (at(11, 59, 40), at(12, 30))),
    ],
)
def test_adjust_window(backend, window, now, expected):
    assert backend.adjust_window(*window, now) == expected


def test_adjust_window_with_now_in_another_zone(backend):
    now = dt.datetime(2026, 5, 1, 14, 30, 40, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    start, end = backend.adjust_window(at(12, 25), at(12, 45), now)
    assert (start, end) == (at(12, 10), at(12, 30))
    assert end.utcoffset() == dt.timedelta(0)


# --- members --------------------------------------------------------------------------------------
def member(identifier, first="", last="", primary="", office="", id_=1):
    return {
        "id": id_,
        "identifier": identifier,
        "firstName": first,
        "lastName": last,
        "primaryEmail": primary,
        "officeEmail": office,
    }


def test_find_user_by_email_matches_exactly_and_case_insensitively(api, backend):
    api.get(
        API + "system/members",
        json=[
            member("jdoe2", "Jane", "Other", primary="jane.doe@acme.com.au", id_=9),  # loose
            member("jdoe", "Jane", "Doe", primary="Jane.Doe@Acme.com", id_=7),
        ],
    )
    user = backend.find_user_by_email("jane.doe@acme.com")
    assert user == PSAUser(ref="jdoe", name="Jane Doe", email="Jane.Doe@Acme.com", extra={"id": 7})
    params = query(api.calls[1])
    assert params["conditions"] == (
        '(primaryEmail="jane.doe@acme.com" or officeEmail="jane.doe@acme.com") '
        "and inactiveFlag=false"
    )
    assert params["pageSize"] == "25"


def test_find_user_by_email_matches_the_office_email_and_prefers_primary(api, backend):
    api.get(
        API + "system/members",
        json=[
            member("office", office="a@b.c", id_=1),
            member("primary", primary="A@B.C", id_=2),
        ],
    )
    assert backend.find_user_by_email("a@b.c").ref == "primary"


def test_find_user_by_email_office_only(api, backend):
    api.get(API + "system/members", json=[member("bob", office="bob@b.c", id_=3)])
    user = backend.find_user_by_email("BOB@b.c")
    assert (user.ref, user.name, user.email) == ("bob", "bob", "bob@b.c")


@pytest.mark.parametrize("email", ['a"b@c.d', "a\\b@c.d"])
def test_find_user_by_email_refuses_unquotable_values_without_a_request(rsps, backend, email):
    assert backend.find_user_by_email(email) is None
    assert not rsps.calls


def test_get_user(api, backend):
    api.get(
        API + "system/members",
        json=[member("jdoe", "Jane", "Doe", primary="j@acme.com", id_=7)],
        match=[
            matchers.query_param_matcher({"conditions": 'identifier="jdoe"'}, strict_match=False)
        ],
    )
    assert backend.get_user("jdoe") == PSAUser(
        ref="jdoe", name="Jane Doe", email="j@acme.com", extra={"id": 7}
    )


def test_list_users_follows_next_links_and_sorts_by_name(api, backend):
    link = f'<{API}system/members?page=2&pageSize=1000>; rel="next", <{API}x?page=2>; rel="last"'
    api.get(
        API + "system/members",
        json=[member("zed", "Zed", "Zulu"), member("amy", "Amy", "Adams")],
        headers={"Link": link},
        match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)],
    )
    api.get(
        API + "system/members",
        json=[member("bob", "Bob", "Brown")],
        headers={"Link": f'<{API}system/members?page=1>; rel="first"'},
        match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)],
    )
    users = backend.list_users(search="o")
    assert [u.ref for u in users] == ["amy", "bob", "zed"]
    params = query(api.calls[1])
    assert params["pageSize"] == "1000"
    assert params["conditions"] == (
        'inactiveFlag=false and (identifier like "%o%" or firstName like "%o%" '
        'or lastName like "%o%" or primaryEmail like "%o%")'
    )
    assert len(api.calls) == 3


def test_list_users_stops_at_5000_members(api, backend):
    page = [member(f"m{i:04}", "M", f"{i:04}") for i in range(1000)]
    link = {"Link": f'<{API}system/members?page=99>; rel="next"'}  # never exhausted
    api.get(API + "system/members", json=page, headers=link)
    assert len(backend.list_users()) == 5000
    assert len(api.calls) == 1 + 5


def test_list_users_without_search_is_all_active(api, backend):
    api.get(API + "system/members", json=[member("amy", "Amy", "Adams")])
    assert [u.name for u in backend.list_users()] == ["Amy Adams"]
    assert query(api.calls[1])["conditions"] == "inactiveFlag=false"


# --- tickets --------------------------------------------------------------------------------------
def test_get_ticket_with_owner(api, backend):
    api.get(
        API + "service/tickets/69",
        json={
            "id": 69,
            "owner": {"id": 7, "identifier": "jdoe", "name": "Jane Doe"},
            "resources": "jdoe, bob",
        },
        match=[matchers.query_param_matcher({"fields": "id,owner,resources"})],
    )
    ticket = backend.get_ticket("69")
    assert ticket.id == "69"
    assert ticket.assignee == PSAUser(ref="jdoe", name="Jane Doe", extra={"id": 7})
    assert ticket.extra == {"resources": ["jdoe", "bob"]}


@pytest.mark.parametrize("body", [{"id": 69, "owner": None}, {"id": 69}])
def test_get_ticket_without_owner(api, backend, body):
    api.get(API + "service/tickets/69", json=body)
    ticket = backend.get_ticket("69")
    assert ticket.assignee is None
    assert ticket.extra == {"resources": []}


# --- finding our entry after an unknown outcome ---------------------------------------------------
def test_find_entry_by_reference_pages_until_found(api, backend):
    api.get(
        API + "time/entries",
        json=[{"id": 1, "notes": "manual work"}, {"id": 2, "notes": None}],
        headers={"Link": f'<{API}time/entries?page=2>; rel="next"'},
        match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)],
    )
    api.get(
        API + "time/entries",
        json=[{"id": 3, "notes": "Patched. [piadesk run-1]"}],
        match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)],
    )
    assert backend.find_entry_by_reference("69", "[piadesk run-1]") == "3"
    assert query(api.calls[1]) == {
        "conditions": 'chargeToType="ServiceTicket" and chargeToId=69',
        "fields": "id,notes,timeStart,timeEnd",
        "pageSize": "1000",
        "page": "1",
    }


# --- configuration --------------------------------------------------------------------------------
VALID = {"company_id": "acme", "public_key": "pub"}
SECRETS = {"private_key": "priv"}


@pytest.mark.parametrize(
    "url",
    [
        "https://api-na.myconnectwise.net",
        "https://api-na.myconnectwise.net/",
        "https://cw.example.com:8443",
        "http://localhost:8000",
        "http://127.0.0.1:8000/",
        "http://127.5.6.7",
        "http://[::1]:8000",
    ],
)
def test_validate_config_accepts(url):
    assert ConnectWiseBackend.validate_config({**VALID, "site_url": url}, SECRETS) == {}


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://api-na.myconnectwise.net", "https://"),  # public host over http
        ("http://10.0.0.5", "https://"),
        ("http://localhost.evil.com", "https://"),
        ("ftp://cw.example.com", "https://"),
        ("api-na.myconnectwise.net", "full address"),
        ("https://", "full address"),
        ("https://cw.example.com/?x=1", "query string"),
        ("https://cw.example.com/#top", "fragment"),
        ("https://user:pw@cw.example.com", "user name"),
        ("https://cw.example.com:port", "not a valid address"),
    ],
)
def test_validate_config_refuses(url, words):
    errors = ConnectWiseBackend.validate_config({**VALID, "site_url": url}, SECRETS)
    assert set(errors) == {"site_url"}
    assert words in errors["site_url"]


def test_normalise_site_url():
    assert normalise_site_url(" https://cw.example.com/ ") == "https://cw.example.com"


def test_find_entry_reads_the_window_connectwise_holds(api, backend):
    # The window sent may have been moved back (no future time): the record says which.
    api.get(
        API + "time/entries",
        json=[
            {
                "id": 3,
                "notes": "Patched. [piadesk run-1]",
                "timeStart": "2026-05-01T13:50:00Z",
                "timeEnd": "2026-05-01T14:10:00Z",
            }
        ],
    )
    assert backend.find_entry("69", "[piadesk run-1]") == FoundEntry(
        "3",
        start=dt.datetime(2026, 5, 1, 13, 50, tzinfo=dt.UTC),
        end=dt.datetime(2026, 5, 1, 14, 10, tzinfo=dt.UTC),
    )


# --- whose problem (issue 11) -----------------------------------------------------------------
MEMBER_REFUSED = {
    "code": "InvalidObject",
    "errors": [{"code": "InvalidMember", "field": "member", "message": "Member is inactive"}],
}
TIME_REFUSED = {
    "code": "InvalidObject",
    "errors": [{"code": "InvalidField", "field": "timeStart", "message": "timeStart is invalid"}],
}
WHOSE = [
    # status, body, operation, whose problem
    (401, "", "read", ErrorScope.CONNECTION),
    (403, SECURITY, "create", ErrorScope.CONNECTION),
    (302, "", "read", ErrorScope.CONNECTION),
    (400, MEMBER_REFUSED, "create", ErrorScope.USER),
    (400, TIME_REFUSED, "create", ErrorScope.ENTRY),
    (404, "", "read", ErrorScope.ENTRY),
    (429, "", "create", ErrorScope.PASSING),
    (503, "", "read", ErrorScope.PASSING),
    (500, "", "create", ErrorScope.PASSING),
]


@pytest.mark.parametrize(("status", "body", "operation", "whose"), WHOSE)
def test_whose_problem(status, body, operation, whose):
    text = body if isinstance(body, str) else json.dumps(body)
    error = classify_response(Response(status, {}, text), operation=operation)
    assert error.scope == whose
