"""The contract every PSA backend keeps, one suite run against each vendor.

What delivery relies on whatever the vendor: how HTTP answers are classified, that a fresh
backend discovers once and then reuses what it found, that bad ticket ids and references never
reach the network, what an answer without an id means, and what the user, ticket and entry
look-ups return. Each vendor is described by a ``Vendor`` below (its backend, a working
connection, and how to answer each kind of request the way that vendor's API does); the
vendor's own file (``test_connectwise.py``, ``test_autotask.py``, ``test_halopsa.py``) keeps its
quirks: the exact requests and payloads, discovery and auth details, vendor-specific errors.

HTTP is mocked at the network edge (``rsps``: every registered answer must be used); none of
these tests touches the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache as django_cache
from responses import matchers

from psa import autotask, connectwise, halopsa
from psa.base import (
    ConfigurationError,
    ConnectionConfig,
    EntryToPost,
    NotFoundError,
    PermanentError,
    PostResult,
    PSABackend,
    PSAUser,
    RetryableError,
    UnknownOutcomeError,
)
from psa.http import PSASession, Response
from psa.registry import backend_class, vendor_choices

UTC = dt.UTC
REFERENCE = "[piadesk run-1]"


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 5, 1, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Person:
    """Someone in the PSA; each vendor renders them as its API does (member, resource, agent)."""

    n: int
    first: str
    last: str
    email: str = ""

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}".strip()


class Vendor:
    """How one vendor's API is mocked for the contract. Subclasses fill in every part."""

    backend: type[PSABackend]
    classify: Callable[..., Any]
    says: str  # how its messages name the PSA
    url_field: str  # a configured address, checked with psa/urls.py's rules
    discovery_url: str  # what a fresh backend asks first (company info, zone, token)
    # The connection's fields for validate_config: (settings, secrets), and which are required.
    valid_settings: dict[str, Any]
    valid_secrets: dict[str, str]
    required: set[str]
    created_status: int  # how a successful post is answered

    def make_backend(self, cache: Any) -> PSABackend:
        config = ConnectionConfig(
            vendor=self.backend.vendor,
            settings=dict(self.valid_settings),
            secrets=dict(self.valid_secrets),
            cache_key="conn-1",
        )
        http = PSASession(secrets=list(self.valid_secrets.values()))
        return self.backend(config, http=http, cache=cache)

    def discovery(self, rsps) -> None:
        raise NotImplementedError

    def ref(self, person: Person) -> str:
        raise NotImplementedError

    def user_ref(self) -> PSAUser:
        """A user as stored on an entry to post (whatever the vendor needs to post for them)."""
        raise NotImplementedError

    def search_answer(self, rsps, people: list[Person], *, found: Person | None) -> None:
        """The answer to find_user_by_email (and to a one-page list_users) listing ``people``."""
        raise NotImplementedError

    def user_answer(self, rsps, person: Person) -> None:
        raise NotImplementedError

    def user_missing(self, rsps, ref: str) -> None:
        raise NotImplementedError

    def ticket_answer(self, rsps, ticket_id: str, assignee: Person | None) -> None:
        raise NotImplementedError

    def ticket_missing(self, rsps, ticket_id: str) -> None:
        raise NotImplementedError

    def entries_answer(self, rsps, ticket_id: str, entries: list[tuple[int, str | None]]) -> None:
        raise NotImplementedError

    def entry_id(self, ticket_id: str, number: int) -> str:
        return str(number)

    def post_answer(self, rsps, *, status: int, body: Any) -> None:
        raise NotImplementedError

    def stored(self, number: int) -> Any:
        """The answer to a successful post that stored entry ``number``."""
        raise NotImplementedError

    def stored_without_id(self) -> Any:
        raise NotImplementedError


def _body(body: Any) -> dict[str, Any]:
    return {"body": body} if isinstance(body, str) else {"json": body}


class ConnectWise(Vendor):
    backend = connectwise.ConnectWiseBackend
    classify = staticmethod(connectwise.classify_response)
    says = "ConnectWise"
    url_field = "site_url"
    site = "https://cw.example.com"
    discovery_url = f"{site}/login/companyinfo/acme"
    api = f"{site}/v2025_1/apis/3.0/"
    valid_settings = {
        "site_url": site,
        "company_id": "acme",
        "public_key": "pub",
        "client_id": "11111111-2222-3333-4444-555555555555",
    }
    valid_secrets = {"private_key": "priv"}
    required = {"site_url", "company_id", "public_key", "private_key"}
    created_status = 201

    def discovery(self, rsps) -> None:
        rsps.get(self.discovery_url, json={"CompanyName": "Acme", "Codebase": "v2025_1/"})

    def ref(self, person: Person) -> str:
        return f"member{person.n}"

    def user_ref(self) -> PSAUser:
        return PSAUser(ref="jdoe", name="Jane Doe")

    def member(self, person: Person) -> dict[str, Any]:
        return {
            "id": person.n,
            "identifier": self.ref(person),
            "firstName": person.first,
            "lastName": person.last,
            "primaryEmail": person.email,
            "officeEmail": "",
        }

    def search_answer(self, rsps, people, *, found=None) -> None:
        rsps.get(self.api + "system/members", json=[self.member(p) for p in people])

    def user_answer(self, rsps, person) -> None:
        rsps.get(self.api + "system/members", json=[self.member(person)])

    def user_missing(self, rsps, ref) -> None:
        rsps.get(self.api + "system/members", json=[])

    def ticket_answer(self, rsps, ticket_id, assignee) -> None:
        owner = None
        if assignee is not None:
            owner = {"id": assignee.n, "identifier": self.ref(assignee), "name": assignee.name}
        rsps.get(f"{self.api}service/tickets/{ticket_id}", json={"id": ticket_id, "owner": owner})

    def ticket_missing(self, rsps, ticket_id) -> None:
        rsps.get(f"{self.api}service/tickets/{ticket_id}", status=404, json={"code": "NotFound"})

    def entries_answer(self, rsps, ticket_id, entries) -> None:
        rsps.get(self.api + "time/entries", json=[{"id": i, "notes": n} for i, n in entries])

    def post_answer(self, rsps, *, status, body) -> None:
        rsps.post(self.api + "time/entries", status=status, **_body(body))

    def stored(self, number):
        return {"id": number, "actualHours": 0.5}

    def stored_without_id(self):
        return {"actualHours": 0.5}


class Autotask(Vendor):
    backend = autotask.AutotaskBackend
    classify = staticmethod(autotask.classify_response)
    says = "Autotask"
    url_field = "discovery_url"
    user = "api@acme.example"
    discovery_url = f"{autotask.DEFAULT_DISCOVERY_URL}v1.0/zoneInformation"
    zone = "https://webservices5.autotask.net/atservicesrest/"
    api = f"{zone}v1.0/"
    valid_settings = {"api_username": user}
    valid_secrets = {"integration_code": "CODE27", "secret": "s3cret"}
    required = {"api_username", "integration_code", "secret"}
    created_status = 200

    def discovery(self, rsps) -> None:
        rsps.get(
            self.discovery_url,
            json={"zoneName": "America East 5", "url": self.zone},
            match=[matchers.query_param_matcher({"user": self.user})],
        )

    def ref(self, person: Person) -> str:
        return str(29682880 + person.n)

    def user_ref(self) -> PSAUser:
        # With its default role known, posting needs no role look-up first.
        return PSAUser(ref="29682886", name="John Doe", extra={"default_role_id": 8})

    @staticmethod
    def page(items: list[Any]) -> dict[str, Any]:
        return {"items": items, "pageDetails": {"count": len(items), "nextPageUrl": None}}

    def resource(self, person: Person) -> dict[str, Any]:
        return {
            "id": int(self.ref(person)),
            "firstName": person.first,
            "lastName": person.last,
            "email": person.email,
            "email2": "",
            "email3": "",
            "isActive": True,
        }

    def search_answer(self, rsps, people, *, found=None) -> None:
        rsps.post(self.api + "Resources/query", json=self.page([self.resource(p) for p in people]))
        if found is not None:  # the match's default role is looked up next
            rsps.post(self.api + "ResourceServiceDeskRoles/query", json=self.page([]))

    def user_answer(self, rsps, person) -> None:
        rsps.get(f"{self.api}Resources/{self.ref(person)}", json={"item": self.resource(person)})

    def user_missing(self, rsps, ref) -> None:
        rsps.get(f"{self.api}Resources/{ref}", status=404, json={})

    def ticket_answer(self, rsps, ticket_id, assignee) -> None:
        item = {
            "id": int(ticket_id),
            "assignedResourceID": int(self.ref(assignee)) if assignee else None,
            "assignedResourceRoleID": 9 if assignee else None,
        }
        rsps.get(f"{self.api}Tickets/{ticket_id}", json={"item": item})

    def ticket_missing(self, rsps, ticket_id) -> None:
        rsps.get(f"{self.api}Tickets/{ticket_id}", status=404, json={})

    def entries_answer(self, rsps, ticket_id, entries) -> None:
        rows = [{"id": i, "summaryNotes": n, "internalNotes": ""} for i, n in entries]
        rsps.post(self.api + "TimeEntries/query", json=self.page(rows))

    def post_answer(self, rsps, *, status, body) -> None:
        rsps.post(self.api + "TimeEntries", status=status, **_body(body))

    def stored(self, number):
        return {"itemId": number}

    def stored_without_id(self):
        return {"id": 1}


class HaloPSA(Vendor):
    backend = halopsa.HaloPSABackend
    classify = staticmethod(halopsa.classify_response)
    says = "HaloPSA"
    url_field = "auth_url"
    auth = "https://acme.halopsa.com/auth"
    api = "https://acme.halopsa.com/api"
    discovery_url = f"{auth}/token"
    valid_settings = {
        "auth_url": auth,
        "resource_url": api,
        "halo_tenant": "acme",
        "client_id": "client-1",
    }
    valid_secrets = {"client_secret": "s3cret-value"}
    required = {"auth_url", "resource_url", "client_id", "client_secret"}
    created_status = 200

    def discovery(self, rsps) -> None:
        rsps.post(
            self.discovery_url,
            json={"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600},
        )

    def ref(self, person: Person) -> str:
        return str(10 + person.n)  # agent 1 is Halo's "Unassigned" placeholder

    def user_ref(self) -> PSAUser:
        return PSAUser(ref="3", name="John Doe")

    def agent(self, person: Person) -> dict[str, Any]:
        return {
            "id": int(self.ref(person)),
            "name": person.name,
            "email": person.email,
            "isdisabled": False,
        }

    def search_answer(self, rsps, people, *, found=None) -> None:
        rsps.get(f"{self.api}/Agent", json=[self.agent(p) for p in people])

    def user_answer(self, rsps, person) -> None:
        rsps.get(f"{self.api}/Agent/{self.ref(person)}", json=self.agent(person))

    def user_missing(self, rsps, ref) -> None:
        rsps.get(f"{self.api}/Agent/{ref}", status=404, json=f"Agent {ref} not found.")

    def ticket_answer(self, rsps, ticket_id, assignee) -> None:
        body = {"id": int(ticket_id), "agent_id": None}
        if assignee is not None:
            body.update(agent_id=int(self.ref(assignee)), agent_name=assignee.name)
        rsps.get(f"{self.api}/Tickets/{ticket_id}", json=body)

    def ticket_missing(self, rsps, ticket_id) -> None:
        rsps.get(f"{self.api}/Tickets/{ticket_id}", status=404, json={"message": "Not found."})

    def entries_answer(self, rsps, ticket_id, entries) -> None:
        actions = [{"id": i, "ticket_id": int(ticket_id), "note": n} for i, n in entries]
        rsps.get(f"{self.api}/Actions", json={"record_count": len(actions), "actions": actions})

    def entry_id(self, ticket_id, number) -> str:
        return f"{ticket_id}/{number}"  # an action is known by its ticket and its id

    def post_answer(self, rsps, *, status, body) -> None:
        rsps.post(f"{self.api}/Actions", status=status, **_body(body))

    def stored(self, number):
        return {"id": number, "ticket_id": 1001}

    def stored_without_id(self):
        return {"ticket_id": 1001}


VENDORS = [ConnectWise(), Autotask(), HaloPSA()]


@pytest.fixture(params=VENDORS, ids=lambda v: v.backend.vendor)
def vendor(request) -> Vendor:
    return request.param


@pytest.fixture
def backend(vendor, fake_cache) -> PSABackend:
    return vendor.make_backend(fake_cache)


@pytest.fixture
def api(vendor, rsps):
    """The mock with the vendor's discovery (company info, zone, token) answered once."""
    vendor.discovery(rsps)
    return rsps


def make_entry(vendor: Vendor, **changes: Any) -> EntryToPost:
    values = {
        "ticket_id": "1001",
        "user": vendor.user_ref(),
        "start": at(14, 0),
        "end": at(14, 30),
        "notes": f"Patched the server.\n{REFERENCE}",
        "reference": REFERENCE,
    }
    return EntryToPost(**{**values, **changes})


# --- classification ---------------------------------------------------------------------------
HTML = "<html>Bad gateway</html>"
CLASSIFICATION = [
    # status, body, operation, expected error class (None = success)
    (200, "{}", "read", None),
    (200, "{}", "create", None),
    (302, "", "read", ConfigurationError),  # a login page or another site: never followed
    (401, "", "read", ConfigurationError),
    (401, "", "create", ConfigurationError),
    (403, "", "read", ConfigurationError),
    (403, "", "create", ConfigurationError),
    (404, "", "read", NotFoundError),
    (404, "", "create", NotFoundError),
    (429, "", "read", RetryableError),
    (429, "", "create", RetryableError),
    (400, "", "create", PermanentError),
    (405, "", "read", PermanentError),
    (409, "", "create", PermanentError),
    # A failed read is tried again; a failed create may have stored the entry: look first.
    (500, "", "read", RetryableError),
    (500, "", "create", UnknownOutcomeError),
    (502, HTML, "read", RetryableError),
    (502, HTML, "create", UnknownOutcomeError),
    (503, "", "read", RetryableError),
    (503, "", "create", UnknownOutcomeError),
    (504, "", "read", RetryableError),
    (504, "", "create", UnknownOutcomeError),
]


@pytest.mark.parametrize(("status", "body", "operation", "expected"), CLASSIFICATION)
def test_classify_response(vendor, status, body, operation, expected):
    response = Response(status, {"Retry-After": "30", "Location": "https://x/"}, body)
    error = vendor.classify(response, operation=operation)
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error.status == status
    assert error.body == body
    assert error.message.startswith(vendor.says)


def test_classify_429_carries_retry_after(vendor):
    for operation in ("read", "create"):
        error = vendor.classify(Response(429, {"Retry-After": "12"}, ""), operation=operation)
        assert isinstance(error, RetryableError)
        assert error.retry_after == 12


def test_classify_rejects_unknown_operation(vendor):
    with pytest.raises(ValueError):
        vendor.classify(Response(200, {}, ""), operation="update")


# --- discovery is done once -------------------------------------------------------------------
PERSON = Person(4, "Alice", "Smith", "alice@acme.example")


def test_discovery_is_cached_across_backends_in_djangos_cache(vendor, api):
    vendor.user_answer(api, PERSON)
    vendor.user_answer(api, PERSON)
    vendor.make_backend(django_cache).get_user(vendor.ref(PERSON))
    vendor.make_backend(django_cache).get_user(vendor.ref(PERSON))
    asked = [c.request.url.split("?")[0] for c in api.calls]
    assert asked.count(vendor.discovery_url) == 1
    assert len(asked) == 3


# --- users ------------------------------------------------------------------------------------
JANE = Person(7, "Jane", "Doe", "Jane.Doe@Acme.example")
NEAR_MISS = Person(9, "Jane", "Other", "jane.doe@acme.example.au")


def test_find_user_by_email_matches_exactly_and_case_insensitively(vendor, api, backend):
    vendor.search_answer(api, [NEAR_MISS, JANE], found=JANE)
    user = backend.find_user_by_email(" jane.doe@acme.example ")
    assert (user.ref, user.name, user.email) == (vendor.ref(JANE), "Jane Doe", JANE.email)


def test_find_user_by_email_without_an_exact_match_is_none(vendor, api, backend):
    vendor.search_answer(api, [NEAR_MISS], found=None)
    assert backend.find_user_by_email("jane.doe@acme.example") is None


@pytest.mark.parametrize("email", ["", "  "])
def test_find_user_by_email_blank_is_none_without_a_request(vendor, rsps, backend, email):
    assert backend.find_user_by_email(email) is None
    assert not rsps.calls


def test_get_user(vendor, api, backend):
    vendor.user_answer(api, PERSON)
    user = backend.get_user(vendor.ref(PERSON))
    assert (user.ref, user.name, user.email) == (vendor.ref(PERSON), "Alice Smith", PERSON.email)


def test_get_user_unknown_is_not_found(vendor, api, backend):
    ref = vendor.ref(Person(99, "", ""))
    vendor.user_missing(api, ref)
    with pytest.raises(NotFoundError) as exc:
        backend.get_user(ref)
    assert ref in exc.value.message


def test_list_users_is_sorted_by_name(vendor, api, backend):
    people = [Person(3, "Zed", "Zulu"), Person(1, "Amy", "Adams"), Person(2, "Bob", "Brown")]
    vendor.search_answer(api, people)
    users = backend.list_users()
    assert [u.name for u in users] == ["Amy Adams", "Bob Brown", "Zed Zulu"]
    assert [u.ref for u in users] == [vendor.ref(people[i]) for i in (1, 2, 0)]


# --- tickets ----------------------------------------------------------------------------------
def test_get_ticket_with_an_assignee(vendor, api, backend):
    vendor.ticket_answer(api, "1001", PERSON)
    ticket = backend.get_ticket("1001")
    assert ticket.id == "1001"
    assert ticket.assignee is not None
    assert ticket.assignee.ref == vendor.ref(PERSON)


def test_get_ticket_unassigned(vendor, api, backend):
    vendor.ticket_answer(api, "1001", None)
    assert backend.get_ticket("1001").assignee is None


def test_get_ticket_unknown_is_not_found(vendor, api, backend):
    vendor.ticket_missing(api, "77")
    with pytest.raises(NotFoundError) as exc:
        backend.get_ticket("77")
    assert exc.value.message.startswith(f"{vendor.says} has no ticket")
    assert "77" in exc.value.message


# Never put into a URL path or a filter: refused before any request.
NOT_TICKET_IDS = ["abc", "12a", "", "-1", "1/../2", "²", "T-1001", "T1001", "T20260501.0001"]


@pytest.mark.parametrize("ticket_id", NOT_TICKET_IDS)
def test_get_ticket_refuses_non_digits_without_a_request(vendor, rsps, backend, ticket_id):
    with pytest.raises(PermanentError):
        backend.get_ticket(ticket_id)
    assert not rsps.calls


# --- posting ----------------------------------------------------------------------------------
def test_post_time_entry_returns_the_psa_id_and_the_window(vendor, api, backend):
    vendor.post_answer(api, status=vendor.created_status, body=vendor.stored(4711))
    result = backend.post_time_entry(make_entry(vendor))
    assert result == PostResult(
        psa_entry_id=vendor.entry_id("1001", 4711), start=at(14, 0), end=at(14, 30)
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        ("created", "stored without id", UnknownOutcomeError),  # stored, but which one?
        (500, "", UnknownOutcomeError),
        (503, "", UnknownOutcomeError),
        (504, "", UnknownOutcomeError),
        (429, "", RetryableError),
        (403, "", ConfigurationError),
    ],
)
def test_post_time_entry_failures(vendor, api, backend, status, body, expected):
    if status == "created":
        status, body = vendor.created_status, vendor.stored_without_id()
    vendor.post_answer(api, status=status, body=body)
    with pytest.raises(expected):
        backend.post_time_entry(make_entry(vendor))


@pytest.mark.parametrize("ticket_id", NOT_TICKET_IDS)
def test_post_refuses_a_non_numeric_ticket_without_a_request(vendor, rsps, backend, ticket_id):
    with pytest.raises(PermanentError):
        backend.post_time_entry(make_entry(vendor, ticket_id=ticket_id))
    assert not rsps.calls


def test_adjust_window_leaves_a_past_window_alone(backend):
    assert backend.adjust_window(at(11, 0), at(11, 20), at(12, 30)) == (at(11, 0), at(11, 20))


# --- finding our entry after an unknown outcome -----------------------------------------------
def test_find_entry_by_reference(vendor, api, backend):
    entries = [(1, "manual work"), (2, None), (3, "[piadesk run-10]"), (5, f"Done. {REFERENCE}")]
    vendor.entries_answer(api, "1001", entries)
    assert backend.find_entry_by_reference("1001", REFERENCE) == vendor.entry_id("1001", 5)


@pytest.mark.parametrize("entries", [[], [(1, "[piadesk run-2]")]])
def test_find_entry_by_reference_none_when_absent(vendor, api, backend, entries):
    # Also what HaloPSA answers within its read lag: the caller must wait before trusting it.
    vendor.entries_answer(api, "1001", entries)
    assert backend.find_entry_by_reference("1001", REFERENCE) is None


def test_find_entry_by_reference_with_an_empty_reference_never_matches(vendor, rsps, backend):
    assert backend.find_entry_by_reference("1001", "") is None
    assert not rsps.calls


# --- configuration ----------------------------------------------------------------------------
def test_validate_config_accepts_a_working_connection(vendor):
    assert vendor.backend.validate_config(vendor.valid_settings, vendor.valid_secrets) == {}


def test_validate_config_requires_every_required_field(vendor):
    assert set(vendor.backend.validate_config({}, {})) == vendor.required
    assert {f.name for f in vendor.backend.config_fields if f.required} == vendor.required


def test_the_secrets_are_the_secret_fields(vendor):
    secret = {f.name for f in vendor.backend.config_fields if f.secret}
    assert secret == set(vendor.valid_secrets)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://psa.example.com/x", "https://"),  # keys in clear to a public host
        ("http://10.0.0.5/x", "https://"),
        ("psa.example.com/x", "full address"),
        ("https://psa.example.com/x?tenant=acme", "query string"),
        ("https://user:pw@psa.example.com/x", "user name"),
    ],
)
def test_validate_config_refuses_unsafe_addresses(vendor, url, words):
    settings = {**vendor.valid_settings, vendor.url_field: url}
    errors = vendor.backend.validate_config(settings, vendor.valid_secrets)
    assert set(errors) == {vendor.url_field}
    assert words in errors[vendor.url_field]


@pytest.mark.parametrize("host", ["http://localhost:8000", "http://127.0.0.1:8000"])
def test_validate_config_accepts_plain_http_on_loopback_only(vendor, host):
    # The local sandbox.
    settings = {**vendor.valid_settings, vendor.url_field: f"{host}/sandbox/x"}
    assert vendor.backend.validate_config(settings, vendor.valid_secrets) == {}


def test_registered(vendor):
    assert backend_class(vendor.backend.vendor) is vendor.backend
    assert (vendor.backend.vendor, vendor.backend.label) in vendor_choices()


def test_the_admin_connection_form_can_be_built(vendor):
    from timelogging.forms import PSAConnectionForm

    form_class = PSAConnectionForm.for_vendor(vendor.backend.vendor)
    # No config field clashes with the form's own fields.
    assert {f.name for f in vendor.backend.config_fields} <= set(form_class.base_fields)


def test_every_registered_vendor_keeps_the_contract():
    assert {v.backend.vendor for v in VENDORS} == {vendor for vendor, _ in vendor_choices()}
