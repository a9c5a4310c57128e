"""Autotask backend: classification, zone, auth, payloads, look-ups; HTTP mocked at the edge.

Autotask's own rules and requests; what every backend does is in test_backend_contract.py.
None of these tests touches the database.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import responses
from responses import matchers

from psa.autotask import (
    DEFAULT_DISCOVERY_URL,
    NOTES_MAX_CHARS,
    AutotaskBackend,
    RoleRefused,
    build_time_entry_payload,
    classify_response,
    fit_notes,
)
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
from psa.http import PSASession, Response

USER = "api@acme.example"
ZONE_LOOKUP = f"{DEFAULT_DISCOVERY_URL}v1.0/zoneInformation"
ZONE_BASE = "https://webservices5.autotask.net/atservicesrest/"
API = f"{ZONE_BASE}v1.0/"
ZONE = {
    "zoneName": "America East 5",
    "url": ZONE_BASE,
    "webUrl": "https://ww5.autotask.net/",
    "ci": 5,
}
UTC = dt.UTC
PROXY_REFUSAL = {
    "errors": [
        "The logged in Resource does not have the adequate permissions to create this entity type."
    ]
}


def make_backend(cache, **settings) -> AutotaskBackend:
    config = ConnectionConfig(
        vendor="autotask",
        settings={"api_username": USER, **settings},
        secrets={"integration_code": "CODE27", "secret": "s3cret"},
        cache_key="conn-1",
    )
    return AutotaskBackend(config, http=PSASession(), cache=cache)


@pytest.fixture
def backend(fake_cache):
    return make_backend(fake_cache)


def zone_answer(rsps, zone=None, **kwargs):
    rsps.get(
        ZONE_LOOKUP,
        json=zone or ZONE,
        match=[matchers.query_param_matcher({"user": USER})],
        **kwargs,
    )


@pytest.fixture
def api(rsps):
    """The mock with the zone look-up answered."""
    zone_answer(rsps)
    return rsps


def urls(rsps) -> list[str]:
    return [f"{c.request.method} {c.request.url.split('?')[0]}" for c in rsps.calls]


def sent(call) -> dict:
    return json.loads(call.request.body)


def at(hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 5, 1, hour, minute, second, tzinfo=UTC)


def make_entry(**changes) -> EntryToPost:
    values = {
        "ticket_id": "1001",
        "user": PSAUser(ref="29682886", name="John Doe", extra={"default_role_id": 8}),
        "start": at(14, 0),
        "end": at(14, 30),
        "notes": "Patched the server.\n[piadesk run-1]",
        "reference": "[piadesk run-1]",
    }
    return EntryToPost(**{**values, **changes})


def expected_payload(**changes) -> dict:
    payload = {
        "ticketID": 1001,
        "resourceID": 29682886,
        "roleID": 8,
        "dateWorked": "2026-05-01T00:00:00Z",
        "startDateTime": "2026-05-01T14:00:00Z",
        "endDateTime": "2026-05-01T14:30:00Z",
        "hoursWorked": 0.5,
        "summaryNotes": "Patched the server.\n[piadesk run-1]",
        "internalNotes": "[piadesk run-1]",
    }
    return {**payload, **changes}


def page(items, next_url=None) -> dict:
    return {
        "items": items,
        "pageDetails": {
            "count": len(items),
            "requestCount": 500,
            "prevPageUrl": None,
            "nextPageUrl": next_url,
        },
    }


def entity_information(rsps, base=API, *, entity="TimeEntries", **info):
    """Autotask's answer to ``GET {entity}/entityInformation`` (REST_EntityInformationCall):
    userAccessFor* are 0 (None), 1 (All) or 2 (Restricted)."""
    answer = {
        "name": entity,
        "canCreate": True,
        "canDelete": True,
        "canQuery": True,
        "canUpdate": True,
        "userAccessForCreate": 1,
        "userAccessForDelete": 0,
        "userAccessForQuery": 1,
        "userAccessForUpdate": 1,
        "hasUserDefinedFields": False,
        "supportsWebhookCallouts": False,
        **info,
    }
    rsps.get(f"{base}{entity}/entityInformation", json={"info": answer})


# --- classification -------------------------------------------------------------------------
def errors(*messages: str) -> dict:
    return {"errors": list(messages)}


WRONG_CODE = errors("IntegrationCode is invalid.")
WRONG_USER = errors("The UserName is not valid for this API.")
NO_ROLE = errors("TimeEntries for Tickets must have a roleID")
BAD_ROLE = errors("Role does not exist or is invalid")
STRICT_ROLE = errors("The roleID must match the ticket's assigned resource role.")
HOURS = errors("hoursWorked must be greater than 0 and no more than 24.")
RULE = errors("The ticket is complete: time can no longer be added.")
TIMEOUT = errors("Execution Timeout Expired. The timeout period elapsed.")
DEADLOCK = errors("Transaction was deadlocked on lock resources; rerun the transaction.")
MIDNIGHT = errors("Time entries cannot span over midnight.")

CASES = [
    # status, body, operation, expected error class (None = success)
    (200, {"itemId": 1}, "create", None),
    (200, {"item": {"id": 1}}, "read", None),
    (403, {"errors": ["Forbidden"]}, "read", ConfigurationError),
    (404, {"Message": "No HTTP resource was found"}, "create", NotFoundError),
    (500, PROXY_REFUSAL, "create", ConfigurationError),
    (500, PROXY_REFUSAL, "read", ConfigurationError),
    (500, errors("Impersonation is not allowed for this resource."), "create", ConfigurationError),
    (500, WRONG_CODE, "read", ConfigurationError),
    (500, WRONG_CODE, "create", ConfigurationError),
    (500, WRONG_USER, "read", ConfigurationError),
    (500, NO_ROLE, "create", RoleRefused),
    (500, BAD_ROLE, "create", RoleRefused),
    (500, STRICT_ROLE, "create", RoleRefused),
    (500, errors("resourceID 5 is not an active resource."), "create", UserError),
    (500, MIDNIGHT, "create", ConfigurationError),
    (500, HOURS, "create", PermanentError),
    (500, RULE, "create", PermanentError),
    (500, RULE, "read", PermanentError),
    (500, TIMEOUT, "read", RetryableError),
    (500, TIMEOUT, "create", UnknownOutcomeError),
    (500, DEADLOCK, "read", RetryableError),
    (500, DEADLOCK, "create", UnknownOutcomeError),
    (500, "<html>Server Error</html>", "create", UnknownOutcomeError),
    (500, {"errors": []}, "create", UnknownOutcomeError),
    (400, errors("The request is invalid."), "create", PermanentError),
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


def test_proxy_refusal_says_what_to_change():
    response = Response(500, {}, json.dumps(PROXY_REFUSAL))
    error = classify_response(response, operation="create")
    assert isinstance(error, ConfigurationError)
    assert error.message.startswith("Autotask refused to log time for another resource")
    # Autotask's own words, then the fixes.
    assert PROXY_REFUSAL["errors"][0] in error.message
    assert "Proxy Time Entry" in error.message
    assert "Enabled for Timesheet Approvers and Administrators" in error.message
    assert "System Settings → Timesheets" in error.message
    assert "turn on impersonation on the piadesk connection" in error.message


def test_proxy_refusal_while_impersonating_gives_the_impersonation_fix():
    response = Response(500, {}, json.dumps(PROXY_REFUSAL))
    error = classify_response(response, operation="create", impersonating=True)
    assert isinstance(error, UserError)
    assert "while impersonating" in error.message
    assert "Allow impersonation of resources with this security level" in error.message
    assert PROXY_REFUSAL["errors"][0] in error.message


def test_permission_refusal_on_a_read_points_at_the_security_level():
    error = classify_response(Response(500, {}, json.dumps(PROXY_REFUSAL)), operation="read")
    assert "security level" in error.message
    assert "Proxy Time Entry" not in error.message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (WRONG_CODE, ('"IntegrationCode is invalid."', "integration code")),
        (NO_ROLE, ('"TimeEntries for Tickets must have a roleID"', "Role ID on the connection")),
        (BAD_ROLE, ('"Role does not exist or is invalid"', "default service desk role")),
        (HOURS, ('"hoursWorked must be greater than 0 and no more than 24."',)),
        (RULE, ('"The ticket is complete: time can no longer be added."',)),
        (TIMEOUT, ("Execution Timeout Expired", "looked for before posting again")),
        (MIDNIGHT, ("span over midnight",)),
    ],
)
def test_classify_messages_quote_autotask(body, words):
    error = classify_response(Response(500, {}, json.dumps(body)), operation="create")
    for word in words:
        assert word in error.message


def test_classify_401_names_the_secret():
    error = classify_response(Response(401, {}, ""), operation="read")
    assert "Secret" in error.message


# --- zone discovery -------------------------------------------------------------------------
def test_zone_is_cached_across_backends(api, fake_cache):
    api.get(API + "ThresholdInformation", json={"currentTimeframeRequestCount": 1})
    entity_information(api)
    make_backend(fake_cache).check_connection()
    make_backend(fake_cache).check_connection()
    assert urls(api) == [
        f"GET {ZONE_LOOKUP}",
        f"GET {API}ThresholdInformation",
        f"GET {API}TimeEntries/entityInformation",
        f"GET {API}ThresholdInformation",
        f"GET {API}TimeEntries/entityInformation",
    ]
    [(key, value)] = fake_cache.data.items()
    assert key.startswith("psa:autotask:zone:conn-1:")
    assert value == {
        "url": ZONE_BASE,
        "name": "America East 5",
        "web_url": "https://ww5.autotask.net/",
    }
    assert fake_cache.timeouts[key] == 24 * 3600


def test_zone_lookup_sends_no_credentials(api, backend):
    api.get(API + "ThresholdInformation", json={})
    entity_information(api)
    backend.check_connection()
    lookup, call, _ = api.calls
    for header in ("ApiIntegrationCode", "UserName", "Secret"):
        assert header not in lookup.request.headers
    assert call.request.headers["ApiIntegrationCode"] == "CODE27"
    assert call.request.headers["UserName"] == USER
    assert call.request.headers["Secret"] == "s3cret"
    assert call.request.headers["Content-Type"] == "application/json"


def test_zone_without_trailing_slash_is_normalised(rsps, backend):
    zone_answer(rsps, {**ZONE, "url": ZONE_BASE.rstrip("/")})
    rsps.get(API + "ThresholdInformation", json={})
    entity_information(rsps)
    backend.check_connection()
    assert urls(rsps)[1] == f"GET {API}ThresholdInformation"


def test_custom_discovery_address(rsps, fake_cache):
    sandbox = "http://127.0.0.1:8000/sandbox/autotask"
    rsps.get(
        f"{sandbox}/v1.0/zoneInformation",
        json={**ZONE, "url": f"{sandbox}/"},
        match=[matchers.query_param_matcher({"user": USER})],
    )
    rsps.get(f"{sandbox}/v1.0/ThresholdInformation", json={})
    entity_information(rsps, f"{sandbox}/v1.0/")
    make_backend(fake_cache, discovery_url=sandbox).check_connection()
    assert len(rsps.calls) == 3


def test_unknown_api_user_is_a_configuration_error(rsps, backend):
    zone_answer(rsps, {"errors": ["Zone information could not be determined"]}, status=500)
    with pytest.raises(ConfigurationError) as exc:
        backend.check_connection()
    assert exc.value.message.startswith(
        "Autotask does not know the API user 'api@acme.example': check the API user name."
    )
    assert '"Zone information could not be determined"' in exc.value.message
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (503, "", RetryableError),
        (500, "", RetryableError),  # no Autotask envelope: an outage, not an unknown user
        (429, "", RetryableError),
        (404, "<html>Not here</html>", ConfigurationError),
        (200, "<html>login</html>", ConfigurationError),
        (200, '{"zoneName": "x"}', ConfigurationError),
    ],
)
def test_zone_lookup_failures(rsps, backend, status, body, expected):
    rsps.get(ZONE_LOOKUP, status=status, body=body)
    with pytest.raises(expected):
        backend.check_connection()
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    "url", ["http://webservices5.autotask.net/atservicesrest/", "https://user:pw@x.example/"]
)
def test_an_unsafe_zone_address_is_never_used(rsps, backend, url):
    zone_answer(rsps, {**ZONE, "url": url})
    with pytest.raises(ConfigurationError, match="unusable zone address"):
        backend.check_connection()
    assert len(rsps.calls) == 1


def test_zone_is_looked_up_again_after_a_401_and_the_call_retried(rsps, fake_cache):
    moved = "https://webservices14.autotask.net/atservicesrest/"
    zone_answer(rsps)
    rsps.get(API + "ThresholdInformation", json={"currentTimeframeRequestCount": 1})
    entity_information(rsps)
    make_backend(fake_cache).check_connection()  # caches webservices5
    rsps.replace(
        "GET", API + "ThresholdInformation", status=401, body="", match=[]
    )  # the database moved
    rsps.replace(
        "GET",
        ZONE_LOOKUP,
        json={**ZONE, "zoneName": "Pre-release", "url": moved},
        match=[matchers.query_param_matcher({"user": USER})],
    )
    rsps.get(f"{moved}v1.0/ThresholdInformation", json={"currentTimeframeRequestCount": 2})
    entity_information(rsps, f"{moved}v1.0/")

    message = make_backend(fake_cache).check_connection()

    assert urls(rsps)[3:] == [
        f"GET {API}ThresholdInformation",
        f"GET {ZONE_LOOKUP}",
        f"GET {moved}v1.0/ThresholdInformation",
        f"GET {moved}v1.0/TimeEntries/entityInformation",
    ]
    assert "zone Pre-release" in message
    assert fake_cache.deleted
    assert next(iter(fake_cache.data.values()))["url"] == moved


def test_a_401_with_an_unchanged_zone_is_not_retried(rsps, fake_cache):
    zone_answer(rsps)
    rsps.get(API + "ThresholdInformation", json={})
    entity_information(rsps)
    make_backend(fake_cache).check_connection()
    rsps.replace("GET", API + "ThresholdInformation", status=401, body="")
    with pytest.raises(ConfigurationError, match="Secret"):
        make_backend(fake_cache).check_connection()
    assert urls(rsps)[3:] == [f"GET {API}ThresholdInformation", f"GET {ZONE_LOOKUP}"]


def test_a_401_right_after_a_fresh_lookup_is_not_looked_up_again(api, backend):
    api.get(API + "ThresholdInformation", status=401, body="")
    with pytest.raises(ConfigurationError):
        backend.check_connection()
    assert len(api.calls) == 2


USAGE = {
    "externalRequestThreshold": 10000,
    "requestThresholdTimeframe": 60,
    "currentTimeframeRequestCount": 1234,
}
PROXY_UNKNOWN = (
    "Whether Autotask lets this API user log time for other resources (Proxy Time Entry) "
    "shows on the first entry: Autotask's API does not tell."
)


def test_check_connection_says_proxy_time_entry_shows_on_the_first_entry(api, backend):
    api.get(API + "ThresholdInformation", json=USAGE)
    entity_information(api)
    message = backend.check_connection()
    assert message.startswith(
        "Connected to Autotask (zone America East 5); 1234 of 10000 requests used this hour. "
        "The API user may create time entries. " + PROXY_UNKNOWN
    )
    # What to set, and what happens if it is not set.
    assert "Enabled for Timesheet Approvers and Administrators" in message
    assert "the connection pauses" in message
    assert urls(api)[-1] == f"GET {API}TimeEntries/entityInformation"


def test_check_connection_with_impersonation_says_what_the_security_levels_must_allow(
    rsps, fake_cache
):
    zone_answer(rsps)
    rsps.get(API + "ThresholdInformation", json={})
    entity_information(rsps)
    message = make_backend(fake_cache, impersonate=True).check_connection()
    assert message.startswith(
        "Connected to Autotask (zone America East 5). The API user may create time entries. "
        "Each entry is logged as its resource (impersonation)"
    )
    assert "Allow impersonation of resources with this security level" in message
    assert "fails only that resource's entries" in message
    assert "Proxy Time Entry" not in message


@pytest.mark.parametrize(
    "info",
    [
        {"userAccessForCreate": 0},
        {"userAccessForCreate": "None"},
        {"canCreate": False},
    ],
)
def test_check_connection_fails_when_the_api_user_may_not_create_time_entries(
    api, backend, info
):
    api.get(API + "ThresholdInformation", json={})
    entity_information(api, **info)
    with pytest.raises(ConfigurationError) as refused:
        backend.check_connection()
    assert refused.value.message.startswith(
        "Connected to Autotask (zone America East 5), but its API user may not create time "
        "entries"
    )
    assert "Security Levels" in refused.value.message


@pytest.mark.parametrize("access", [2, "Restricted"])
def test_check_connection_says_when_creating_time_entries_is_restricted(api, backend, access):
    api.get(API + "ThresholdInformation", json={})
    entity_information(api, userAccessForCreate=access)
    message = backend.check_connection()
    assert "The API user may create time entries only as its security level allows" in message
    assert PROXY_UNKNOWN in message


@pytest.mark.parametrize(
    "answer", [{"status": 404, "json": {"Message": "No HTTP resource"}}, {"json": {"x": 1}}]
)
def test_check_connection_says_what_it_could_not_read(api, backend, answer):
    api.get(API + "ThresholdInformation", json={})
    api.get(API + "TimeEntries/entityInformation", **answer)
    message = backend.check_connection()
    assert message.startswith(
        "Connected to Autotask (zone America East 5). Autotask did not say whether the API user "
        "may create time entries (TimeEntries/entityInformation)."
    )
    assert PROXY_UNKNOWN in message


def test_payload_is_exact():
    assert build_time_entry_payload(make_entry(), 8) == expected_payload()


def test_payload_times_are_utc_and_the_day_worked_is_the_utc_day():
    minus5 = dt.timezone(dt.timedelta(hours=-5))
    entry = make_entry(
        start=dt.datetime(2026, 4, 30, 22, 50, tzinfo=minus5),
        end=dt.datetime(2026, 4, 30, 23, 10, tzinfo=minus5),
    )
    payload = build_time_entry_payload(entry, 8)
    assert payload["dateWorked"] == "2026-05-01T00:00:00Z"
    assert payload["startDateTime"] == "2026-05-01T03:50:00Z"
    assert payload["endDateTime"] == "2026-05-01T04:10:00Z"
    assert payload["hoursWorked"] == 0.33


@pytest.mark.parametrize(
    ("minutes", "hours"), [(1, 0.02), (6, 0.1), (20, 0.33), (90, 1.5), (24 * 60, 24.0)]
)
def test_hours_worked_is_rounded_to_two_places(minutes, hours):
    entry = make_entry(end=at(0, 0) + dt.timedelta(minutes=minutes), start=at(0, 0))
    assert build_time_entry_payload(entry, 8)["hoursWorked"] == hours


@pytest.mark.parametrize(
    "end", [at(14, 0), at(14, 0, 10), at(13, 0), at(14, 0) + dt.timedelta(hours=24, minutes=1)]
)
def test_hours_outside_autotasks_bounds_are_refused_before_sending(rsps, backend, end):
    with pytest.raises(PermanentError, match="hoursWorked"):
        backend.post_time_entry(make_entry(end=end))
    assert not rsps.calls


def test_long_notes_keep_the_reference_at_the_end():
    notes = "x" * 9000 + "\nAutomation: Reset\n[piadesk run-1]"
    fitted = fit_notes(notes, "[piadesk run-1]")
    assert len(fitted) == NOTES_MAX_CHARS
    assert fitted.endswith("…\n[piadesk run-1]")
    payload = build_time_entry_payload(make_entry(notes=notes), 8)
    assert payload["summaryNotes"] == fitted


def test_short_notes_are_unchanged():
    assert fit_notes("a\n[ref]", "[ref]") == "a\n[ref]"


def test_post_as_the_starter_uses_the_resources_default_role(api, backend):
    api.post(API + "TimeEntries", json={"itemId": 4711})
    result = backend.post_time_entry(make_entry(log_as="starter"))
    assert result == PostResult(psa_entry_id="4711", start=at(14, 0), end=at(14, 30))
    assert urls(api) == [f"GET {ZONE_LOOKUP}", f"POST {API}TimeEntries"]
    assert sent(api.calls[1]) == expected_payload(roleID=8)
    assert "ImpersonationResourceId" not in api.calls[1].request.headers


def test_post_as_the_assignee_uses_the_tickets_assigned_role(api, backend):
    api.post(API + "TimeEntries", json={"itemId": 4712})
    assignee = PSAUser(ref="29682887", extra={"role_id": 9})
    ticket = Ticket(id="1002", assignee=assignee, extra={"assigned_role_id": 9})
    entry = make_entry(ticket_id="1002", user=assignee, log_as="assignee", ticket=ticket)
    backend.post_time_entry(entry)
    assert sent(api.calls[1]) == expected_payload(ticketID=1002, resourceID=29682887, roleID=9)


def test_post_as_a_specified_user_looks_up_the_default_role(api, backend):
    api.post(
        API + "ResourceServiceDeskRoles/query",
        json=page([{"id": 1, "resourceID": 29682888, "roleID": 8, "isDefault": True}]),
    )
    api.post(API + "TimeEntries", json={"itemId": 4713})
    user = PSAUser(ref="29682888", name="Time Logging")  # as stored in the settings
    backend.post_time_entry(make_entry(user=user, log_as="specified"))
    assert urls(api)[1:] == [
        f"POST {API}ResourceServiceDeskRoles/query",
        f"POST {API}TimeEntries",
    ]
    assert sent(api.calls[1]) == {
        "MaxRecords": 500,
        "filter": [
            {"op": "eq", "field": "resourceID", "value": 29682888},
            {"op": "eq", "field": "isDefault", "value": True},
            {"op": "eq", "field": "isActive", "value": True},
        ],
    }
    assert sent(api.calls[2]) == expected_payload(resourceID=29682888, roleID=8)


def test_the_starter_who_is_the_tickets_assignee_gets_the_tickets_role(api, backend):
    # Logged as the starter, but John is also the ticket's assigned resource: Autotask wants
    # the ticket's assigned role (9), not John's default (8).
    api.post(API + "TimeEntries", json={"itemId": 4714})
    john = PSAUser(ref="29682886", extra={"default_role_id": 8})
    ticket = Ticket(id="1001", assignee=PSAUser(ref="29682886"), extra={"assigned_role_id": 9})
    backend.post_time_entry(make_entry(user=john, log_as="starter", ticket=ticket))
    assert sent(api.calls[1])["roleID"] == 9


def ticket_answer(rsps, *, assignee=29682886, role=9):
    rsps.get(
        API + "Tickets/1001",
        json={"item": {"id": 1001, "assignedResourceID": assignee, "assignedResourceRoleID": role}},
    )


def test_a_role_refusal_then_the_tickets_role_is_accepted(api, backend):
    api.add(responses.POST, API + "TimeEntries", status=500, json=STRICT_ROLE)
    api.add(responses.POST, API + "TimeEntries", json={"itemId": 4715})
    ticket_answer(api)
    result = backend.post_time_entry(make_entry(log_as="starter"))
    assert result.psa_entry_id == "4715"
    posts = [sent(c) for c in api.calls if c.request.url.endswith("TimeEntries")]
    assert [p["roleID"] for p in posts] == [8, 9]
    assert f"GET {API}Tickets/1001" in urls(api)


def test_a_role_refused_twice_says_what_to_change(api, backend):
    api.post(API + "TimeEntries", status=500, json=STRICT_ROLE)
    ticket_answer(api)
    with pytest.raises(PermanentError) as exc:
        backend.post_time_entry(make_entry(log_as="starter"))
    posts = [c for c in api.calls if c.request.url.endswith("TimeEntries")]
    assert len(posts) == 2  # the default role, then the ticket's, never more
    message = exc.value.message
    assert "role 8 and then the ticket's assigned role 9" in message
    assert "Allow users to modify Role" in message and "service desk" in message


def test_a_role_refusal_when_the_ticket_has_the_same_role_is_not_retried(api, backend):
    api.post(API + "TimeEntries", status=500, json=BAD_ROLE)
    ticket_answer(api, role=8)
    with pytest.raises(PermanentError, match="Allow users to modify Role"):
        backend.post_time_entry(make_entry(log_as="starter"))
    assert len([c for c in api.calls if c.request.url.endswith("TimeEntries")]) == 1


def test_assignee_of_another_ticket_falls_back_to_the_default_role(api, backend):
    api.post(API + "TimeEntries", json={"itemId": 1})
    ticket = Ticket(id="999", assignee=None, extra={"assigned_role_id": 9})
    backend.post_time_entry(make_entry(log_as="assignee", ticket=ticket))
    assert sent(api.calls[1])["roleID"] == 8


def test_without_a_default_role_the_connections_role_is_used(rsps, fake_cache):
    zone_answer(rsps)
    rsps.post(API + "ResourceServiceDeskRoles/query", json=page([]))
    rsps.post(API + "TimeEntries", json={"itemId": 1})
    backend = make_backend(fake_cache, role_id="12")
    backend.post_time_entry(make_entry(user=PSAUser(ref="29682886")))
    assert sent(rsps.calls[2])["roleID"] == 12


def test_without_any_role_nothing_is_posted(api, backend):
    # One resource without a default role is that user's problem, not the connection's.
    api.post(API + "ResourceServiceDeskRoles/query", json=page([]))
    with pytest.raises(UserError) as exc:
        backend.post_time_entry(make_entry(user=PSAUser(ref="29682886")))
    assert exc.value.message == (
        "Autotask resource 29682886 has no default service desk role: set one in Autotask or "
        "set Role ID on the connection."
    )
    assert f"POST {API}TimeEntries" not in urls(api)


def test_impersonation_sends_the_resource_id_header(rsps, fake_cache):
    zone_answer(rsps)
    rsps.post(
        API + "TimeEntries",
        json={"itemId": 1},
        match=[matchers.header_matcher({"ImpersonationResourceId": "29682886"})],
    )
    make_backend(fake_cache, impersonate=True).post_time_entry(make_entry())


def test_a_refusal_while_impersonating_gives_the_impersonation_fix(rsps, fake_cache):
    # The resource's licence or security level cannot be impersonated: that user's problem
    # (UserError), not the connection's.
    zone_answer(rsps)
    rsps.post(API + "TimeEntries", status=500, json=PROXY_REFUSAL)
    with pytest.raises(UserError, match="while impersonating"):
        make_backend(fake_cache, impersonate="on").post_time_entry(make_entry())


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, PROXY_REFUSAL, ConfigurationError),
        (500, WRONG_CODE, ConfigurationError),
        (500, HOURS, PermanentError),
        (500, TIMEOUT, UnknownOutcomeError),
    ],
)
def test_post_time_entry_failures(api, backend, status, body, expected):
    kwargs = {"json": body} if body != "" else {"body": ""}
    api.post(API + "TimeEntries", status=status, **kwargs)
    with pytest.raises(expected):
        backend.post_time_entry(make_entry())


def test_posting_under_tickets_would_be_a_404(api, backend):
    # The route Autotask does not have (WYRE-AI/autotask-mcp#277) is never used.
    api.post(API + "TimeEntries", json={"itemId": 1})
    backend.post_time_entry(make_entry())
    assert not any("/Tickets/" in url for url in urls(api))


def test_post_refuses_a_non_numeric_resource_as_a_mapping_problem(rsps, backend):
    with pytest.raises(UserError, match="not an Autotask resource id"):
        backend.post_time_entry(make_entry(user=PSAUser(ref="jdoe")))
    assert not rsps.calls


def test_adjust_window_leaves_the_window_alone(backend):
    assert backend.adjust_window(at(14, 0), at(14, 30), at(14, 10)) == (at(14, 0), at(14, 30))


# --- resources --------------------------------------------------------------------------------
def resource(id_, first="", last="", email="", email2="", email3="", active=True) -> dict:
    return {
        "id": id_,
        "firstName": first,
        "lastName": last,
        "email": email,
        "email2": email2,
        "email3": email3,
        "isActive": active,
    }


def test_find_user_by_email_matches_exactly_and_fetches_the_default_role(api, backend):
    api.post(
        API + "Resources/query",
        json=page(
            [
                resource(1, "Jane", "Other", email="jane.doe@acme.example.au"),  # loose match
                resource(29682886, "John", "Doe", email="John.Doe@Acme.example"),
            ]
        ),
    )
    api.post(
        API + "ResourceServiceDeskRoles/query",
        json=page([{"id": 5, "resourceID": 29682886, "roleID": 8, "isDefault": True}]),
    )
    user = backend.find_user_by_email(" john.doe@acme.example ")
    assert user == PSAUser(
        ref="29682886",
        name="John Doe",
        email="John.Doe@Acme.example",
        extra={"default_role_id": 8},
    )
    value = "john.doe@acme.example"
    assert sent(api.calls[1]) == {
        "MaxRecords": 500,
        "filter": [
            {
                "op": "or",
                "items": [
                    {"op": "eq", "field": "email", "value": value},
                    {"op": "eq", "field": "email2", "value": value},
                    {"op": "eq", "field": "email3", "value": value},
                ],
            },
            {"op": "eq", "field": "isActive", "value": True},
        ],
    }
    assert sent(api.calls[2])["filter"][0] == {
        "op": "eq",
        "field": "resourceID",
        "value": 29682886,
    }


def test_find_user_by_email_prefers_the_main_email(api, backend):
    api.post(
        API + "Resources/query",
        json=page([resource(2, email2="a@b.c"), resource(3, email="A@B.C")]),
    )
    api.post(API + "ResourceServiceDeskRoles/query", json=page([]))
    user = backend.find_user_by_email("a@b.c")
    assert (user.ref, user.extra) == ("3", {"default_role_id": None})


def test_find_user_by_email_matches_an_additional_email(api, backend):
    api.post(API + "Resources/query", json=page([resource(4, "Bob", email3="bob@b.c")]))
    api.post(API + "ResourceServiceDeskRoles/query", json=page([]))
    assert backend.find_user_by_email("BOB@b.c").ref == "4"


@pytest.mark.parametrize(
    "items",
    [
        [resource(1, email="jane.doe@acme.example", active=False)],
        [],
    ],
)
def test_find_user_by_email_without_an_exact_active_match_is_none(api, backend, items):
    api.post(API + "Resources/query", json=page(items))
    assert backend.find_user_by_email("jane.doe@acme.example") is None


def test_get_user(api, backend):
    api.get(API + "Resources/29682886", json={"item": resource(29682886, "John", "Doe", "j@a.e")})
    assert backend.get_user("29682886") == PSAUser(ref="29682886", name="John Doe", email="j@a.e")


@pytest.mark.parametrize(("status", "body"), [(200, {"item": None})])
def test_get_user_unknown_is_not_found(api, backend, status, body):
    api.get(API + "Resources/5", status=status, json=body)
    with pytest.raises(NotFoundError, match="no resource '5'"):
        backend.get_user("5")


@pytest.mark.parametrize("ref", ["jdoe", "", "12a"])
def test_get_user_with_a_ref_that_is_no_resource_id_is_not_found(rsps, backend, ref):
    with pytest.raises(NotFoundError, match="resource ids are numbers"):
        backend.get_user(ref)
    assert not rsps.calls


def test_list_users_follows_next_page_urls_and_sorts_by_name(api, backend):
    next_url = f"{ZONE_BASE.replace('atservicesrest', 'ATServicesRest')}V1.0/Resources/query/next"
    api.post(
        API + "Resources/query",
        json=page([resource(3, "Zed", "Zulu"), resource(1, "Amy", "Adams")], next_url),
    )
    api.get(next_url, json=page([resource(2, "Bob", "Brown")]))
    users = backend.list_users(search=" o ")
    assert [u.ref for u in users] == ["1", "2", "3"]
    assert sent(api.calls[1]) == {
        "MaxRecords": 500,
        "filter": [
            {"op": "eq", "field": "isActive", "value": True},
            {
                "op": "or",
                "items": [
                    {"op": "contains", "field": "firstName", "value": "o"},
                    {"op": "contains", "field": "lastName", "value": "o"},
                    {"op": "contains", "field": "email", "value": "o"},
                ],
            },
        ],
    }
    assert api.calls[2].request.headers["Secret"] == "s3cret"


def test_list_users_without_search_is_all_active(api, backend):
    api.post(API + "Resources/query", json=page([resource(1, "Amy", "Adams")]))
    assert [u.name for u in backend.list_users()] == ["Amy Adams"]
    assert sent(api.calls[1])["filter"] == [{"op": "eq", "field": "isActive", "value": True}]


def test_the_picker_leaves_out_the_api_user(api, backend):
    # The API user (its user name is its e-mail) cannot log time on tickets.
    api_user = {**resource(9, "API", "User"), "email": USER.upper()}
    api.post(API + "Resources/query", json=page([resource(1, "Amy", "Adams"), api_user]))
    assert [u.ref for u in backend.list_users()] == ["1"]


def test_list_users_stops_after_ten_pages(api, backend):
    next_url = f"{API}Resources/query/next?paging=x"
    batch = [resource(i, "R", f"{i:04}") for i in range(500)]
    api.post(API + "Resources/query", json=page(batch, next_url))
    api.get(next_url, json=page(batch, next_url))  # never exhausted
    assert len(backend.list_users()) == 5000
    assert len(api.calls) == 1 + 10


def test_a_next_page_outside_the_zone_is_not_followed(api, backend):
    api.post(
        API + "Resources/query",
        json=page([resource(1, "Amy")], "https://evil.example/atservicesrest/v1.0/next"),
    )
    with pytest.raises(PermanentError, match="outside the zone"):
        backend.list_users()
    assert len(api.calls) == 2


# --- tickets --------------------------------------------------------------------------------
def test_get_ticket_with_an_assignee(api, backend):
    api.get(
        API + "Tickets/1002",
        json={"item": {"id": 1002, "assignedResourceID": 29682887, "assignedResourceRoleID": 9}},
    )
    ticket = backend.get_ticket("1002")
    assert ticket == Ticket(
        id="1002",
        assignee=PSAUser(ref="29682887", extra={"role_id": 9}),
        extra={"assigned_role_id": 9},
    )


def test_get_ticket_unassigned(api, backend):
    api.get(
        API + "Tickets/1003",
        json={"item": {"id": 1003, "assignedResourceID": None, "assignedResourceRoleID": None}},
    )
    ticket = backend.get_ticket("1003")
    assert ticket.assignee is None
    assert ticket.extra == {"assigned_role_id": None}


@pytest.mark.parametrize(("status", "body"), [(200, {"item": None})])
def test_get_ticket_unknown_is_not_found(api, backend, status, body):
    api.get(API + "Tickets/77", status=status, json=body)
    with pytest.raises(NotFoundError, match="Autotask has no ticket 77"):
        backend.get_ticket("77")


# --- finding our entry after an unknown outcome ---------------------------------------------------
def test_find_entry_by_reference(api, backend):
    api.post(
        API + "TimeEntries/query",
        json=page(
            [
                {"id": 1, "summaryNotes": "[piadesk run-10]", "internalNotes": ""},
                {"id": 2, "summaryNotes": "Done.\n[piadesk run-1]", "internalNotes": ""},
            ]
        ),
    )
    assert backend.find_entry_by_reference("1001", "[piadesk run-1]") == "2"
    assert sent(api.calls[1]) == {
        "MaxRecords": 500,
        "filter": [
            {"op": "eq", "field": "ticketID", "value": 1001},
            {
                "op": "or",
                "items": [
                    {"op": "contains", "field": "summaryNotes", "value": "[piadesk run-1]"},
                    {"op": "eq", "field": "internalNotes", "value": "[piadesk run-1]"},
                ],
            },
        ],
    }


def test_find_entry_by_reference_matches_the_internal_notes(api, backend):
    api.post(
        API + "TimeEntries/query",
        json=page([{"id": 7, "summaryNotes": "edited by someone", "internalNotes": "[r]"}]),
    )
    assert backend.find_entry_by_reference("1001", "[r]") == "7"


def test_find_entry_by_reference_follows_pages(api, backend):
    next_url = f"{API}TimeEntries/query/next?paging=abc"
    api.post(API + "TimeEntries/query", json=page([{"id": 1, "summaryNotes": "x"}], next_url))
    api.get(next_url, json=page([{"id": 2, "summaryNotes": "y [r]"}]))
    assert backend.find_entry_by_reference("1001", "[r]") == "2"


# --- configuration ----------------------------------------------------------------------------
VALID = {"api_username": USER}
SECRETS = {"integration_code": "CODE27", "secret": "s3cret"}


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"discovery_url": ""},
        {"discovery_url": "https://webservices.autotask.net/atservicesrest/"},
        {"discovery_url": "http://127.0.0.1:8000/sandbox/autotask/"},
        {"impersonate": True, "role_id": 8},
        {"role_id": "8"},
        {"role_id": None},
    ],
)
def test_validate_config_accepts(settings):
    assert AutotaskBackend.validate_config({**VALID, **settings}, SECRETS) == {}


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"discovery_url": "http://webservices.autotask.net/"}, "discovery_url", "https://"),
        ({"discovery_url": "webservices.autotask.net"}, "discovery_url", "full address"),
        ({"discovery_url": "https://x.example/?user=a"}, "discovery_url", "query string"),
        ({"role_id": "abc"}, "role_id", "whole number"),
        ({"role_id": 0}, "role_id", "whole number"),
        ({"api_username": "api user"}, "api_username", "e-mail address"),
    ],
)
def test_validate_config_refuses(settings, field, words):
    errors = AutotaskBackend.validate_config({**VALID, **settings}, SECRETS)
    assert set(errors) == {field}
    assert words in errors[field]


def test_config_fields():
    fields = {f.name: f for f in AutotaskBackend.config_fields}
    assert list(fields) == [
        "api_username",
        "integration_code",
        "secret",
        "discovery_url",
        "impersonate",
        "role_id",
    ]
    assert {n for n, f in fields.items() if f.secret} == {"integration_code", "secret"}
    assert (fields["impersonate"].kind, fields["impersonate"].required) == ("bool", False)
    assert (fields["role_id"].kind, fields["role_id"].required) == ("int", False)
    assert (fields["discovery_url"].kind, fields["discovery_url"].required) == ("url", False)


def test_find_entry_reads_the_window_autotask_holds(api, backend):
    api.post(
        API + "TimeEntries/query",
        json=page(
            [
                {
                    "id": 2,
                    "summaryNotes": "Done.\n[piadesk run-1]",
                    "startDateTime": "2026-05-01T13:50:00Z",
                    "endDateTime": "2026-05-01T14:10:00.000Z",
                }
            ]
        ),
    )
    assert backend.find_entry("1001", "[piadesk run-1]") == FoundEntry(
        "2", start=at(13, 50), end=at(14, 10)
    )


# --- whose problem (issue 11) -----------------------------------------------------------------
WHOSE = [
    # status, body, operation, impersonating, whose problem
    (401, "", "read", False, ErrorScope.CONNECTION),
    (500, WRONG_CODE, "create", False, ErrorScope.CONNECTION),
    # Proxy Time Entry is a system setting: every resource's entries are refused.
    (500, PROXY_REFUSAL, "create", False, ErrorScope.CONNECTION),
    (500, MIDNIGHT, "create", False, ErrorScope.CONNECTION),
    # One resource cannot be impersonated (licence, security level): that user's entries.
    (500, PROXY_REFUSAL, "create", True, ErrorScope.USER),
    (500, errors("resourceID 5 is not an active resource."), "create", False, ErrorScope.USER),
    (500, BAD_ROLE, "create", False, ErrorScope.ENTRY),
    (500, STRICT_ROLE, "create", False, ErrorScope.ENTRY),
    (500, HOURS, "create", False, ErrorScope.ENTRY),
    (404, "", "read", False, ErrorScope.ENTRY),
    (429, "", "create", False, ErrorScope.PASSING),
    (500, TIMEOUT, "create", False, ErrorScope.PASSING),
    (503, "", "read", False, ErrorScope.PASSING),
]


@pytest.mark.parametrize(("status", "body", "operation", "impersonating", "whose"), WHOSE)
def test_whose_problem(status, body, operation, impersonating, whose):
    text = body if isinstance(body, str) else json.dumps(body)
    response = Response(status, {}, text)
    error = classify_response(response, operation=operation, impersonating=impersonating)
    assert error.scope == whose


@pytest.mark.parametrize(
    "user", [PSAUser(ref="jdoe"), PSAUser(ref="29682886", extra={"default_role_id": None})]
)
def test_one_resources_set_up_is_that_users_problem(rsps, backend, user):
    # Not a resource id (a mapping by hand), or no default role: refused before sending.
    with pytest.raises(UserError) as exc:
        backend.post_time_entry(make_entry(user=user))
    assert exc.value.scope == ErrorScope.USER
    assert not rsps.calls
