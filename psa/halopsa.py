"""HaloPSA REST API backend.

Vendor facts used here (see docs/vendors.md, the Halo OpenAPI v2 document
``halopsa-openapi.json`` from covenanttechnologysolutions/halopsa-rest, and the established
clients topleft-team/django-psa ``djpsa/halo/``, homotechsual/HaloAPI and
redanthrax/halopsa-node):

- Two servers: the *authorisation server* (``https://acme.halopsa.com/auth``) issues tokens,
  the *resource server* (``https://acme.halopsa.com/api``) serves the API (Halo's own
  "API Details" page names both; django-psa keeps them as two settings too).
- Auth: OAuth 2 client credentials. ``POST {auth}/token`` form-encoded with ``grant_type=
  client_credentials``, ``client_id``, ``client_secret``, ``scope=all``; hosted (cloud)
  instances add ``?tenant={name}`` (HaloAPI ``Connect-HaloAPI``). The answer is
  ``{"access_token","token_type","expires_in"}`` (about 3600 s). Every API call then sends
  ``Authorization: Bearer ...``. The token is cached per connection until 60 s before it
  expires (django-psa caches for 3540 s for the same reason); a 401 from the API drops it and
  one new token is fetched and the call retried once (django-psa ``_request`` does the same).
- ``POST Actions`` takes a JSON **array** of actions (the spec's request body is
  ``array of Actions``; django-psa: "Halo API expects a list of records, even if we're only
  creating one") and answers the created action. Action ids are unique only per ticket
  (django-psa concatenates ticket and action id), so piadesk's entry id is
  ``"{ticket_id}/{action_id}"``.
- ``timetaken`` is decimal **hours**; an outcome (``outcome`` name or ``outcome_id``) is always
  sent by established clients, so it is configurable and always sent; ``check_connection``
  looks it up in ``GET Outcome`` (a bare array of ``{"id", "outcome"}``).
- ``GET Tickets/{id}`` → ``agent_id``; agent 1 is Halo's "Unassigned" placeholder (``GET
  Agent`` has an ``includeunassigned`` switch for it), so it means "no assignee".
- ``GET Agent`` answers a bare array (halopsa-node: "Agents API returns array directly");
  ``search`` matches name, e-mail or phone *loosely* (spec: "like your search"), so e-mails
  are matched exactly here. ``GET Actions?ticket_id=`` answers ``{"record_count","actions"}``.
- Paging (``pageinate``, ``page_size``, ``page_no``): asking past the last page returns the
  last page again (django-psa ``fetch_records`` stops on a repeated page), so loops stop on a
  page without new ids or a short page, and are capped.
- Reads lag writes: a new action can take a few seconds to appear in ``GET Actions``. Whoever
  calls ``find_entry_by_reference`` after an unknown outcome must wait ``READ_LAG_SECONDS``
  before trusting a "not found" (``read_after_write_seconds``).
- Datetimes come back without a zone suffix (they are UTC); 1900-01-01 means "empty"
  (django-psa ``empty_date_parser``): see ``parse_halo_datetime``.
- Errors have no single shape (django-psa ``_prepare_error_response``): a bare JSON string,
  ``{"error": ..., "error_description": ...}``, ``{"ClassName","Message"}``, ``{"message"}``,
  ``{"errors": [...]}`` or plain text. ``halo_message`` reads them all. No rate limit is
  published; a 429 is honoured like any other.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken

from psa.base import (
    Cache,
    ConfigField,
    ConfigurationError,
    ConnectionConfig,
    EntryToPost,
    FoundEntry,
    NotFoundError,
    PermanentError,
    PostResult,
    PSABackend,
    PSAError,
    PSAUser,
    RetryableError,
    Ticket,
    UnknownOutcomeError,
    UserError,
    parse_utc,
)
from psa.http import Response
from psa.urls import address_error

DEFAULT_OUTCOME = "Automation"
UNASSIGNED_AGENT_ID = 1  # Halo's "Unassigned" placeholder agent
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TOKEN_EXPIRY_MARGIN = 60  # seconds: a cached token is dropped this long before it expires
DEFAULT_TOKEN_LIFETIME = 3600  # Halo's usual expires_in, when the answer leaves it out
READ_LAG_SECONDS = 10  # how long to wait before trusting "no such action" after a write
PAGE_SIZE = 100
MAX_AGENT_PAGES = 50  # 5,000 agents; bounds the paging loop whatever Halo answers
MAX_ACTIONS = 5000  # ``count`` for one ticket's actions: far beyond any real ticket
BODY_EXCERPT_CHARS = 1000
MESSAGE_CHARS = 300
INT32_MAX = 2**31 - 1  # the spec's ids are int32
JSON_ACCEPT = {"Accept": "application/json"}
TENANT_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
KEYS_ADVICE = (
    "Check the client ID and secret of the API application (Configuration > Integrations > "
    "HaloPSA API) and, for a hosted instance, the tenant."
)
PERMISSIONS_ADVICE = (
    "The API application needs the permissions to read and edit tickets (actions) and to "
    "read agents (Configuration > Integrations > HaloPSA API > the application > Permissions)."
)
OUTCOME_ADVICE = "Set a valid Outcome (or Outcome ID) on the HaloPSA connection."
MAPPING_ADVICE = "Check the user mapping for this agent, and that the agent is active."


# --- small pure helpers -----------------------------------------------------------------------
def normalise_url(url: Any) -> str:
    return str(url or "").strip().rstrip("/")


def _valid_id(value: Any, what: str) -> int:
    """``value`` as a Halo id (ASCII digits, int32, > 0); PermanentError otherwise."""
    text = str(value).strip()
    # str.isdigit accepts "²"; the spec's ids are int32.
    if not re.fullmatch(r"[0-9]{1,10}", text) or not 0 < int(text) <= INT32_MAX:
        raise PermanentError(f"{value!r} is not a HaloPSA {what} number (digits only).")
    return int(text)


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(TIME_FORMAT)


def parse_halo_datetime(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from a Halo datetime string, or None when empty.

    Halo writes datetimes without a zone suffix ("2026-05-01T14:00:00", sometimes with
    fractions); they are UTC. 1900-01-01 (or earlier) is Halo's "no date".
    """
    moment = parse_utc(value)
    return None if moment is None or moment.year <= 1900 else moment


def build_action_payload(
    entry: EntryToPost, *, outcome: str, outcome_id: int | None = None
) -> dict[str, Any]:
    """The one action sent (inside a JSON array) to ``POST Actions`` for ``entry``.

    Field choices, checked against the spec's ``Actions`` schema:

    - ``who_agentid`` names the agent the time is logged for (django-psa maps its action
      ``agent`` to it). ``who`` (a display name, absent from the spec) and
      ``actionby_agent_id`` (who *performed* the update: the API application) are not sent.
    - ``actionarrivaldate``/``actioncompletiondate`` are the start and end (django-psa:
      "start time"/"end time"), UTC with a ``Z``; ``timetaken`` is decimal hours.
      ``timetakendays`` and ``timetakenadjusted`` are left for Halo to derive.
    - ``outcome`` is always sent; ``outcome_id`` too when configured (established clients
      always send an outcome, and Halo picks the action type from it).
    - ``hiddenfromuser``: automation notes are internal; ``sendemail: false``: nobody is
      e-mailed about them. ``actisbillable`` is left out so the ticket's contract and charge
      rate decide, as for the other PSAs.
    """
    agent_id = _agent_id(entry.user.ref)
    action: dict[str, Any] = {
        "ticket_id": _valid_id(entry.ticket_id, "ticket"),
        "who_agentid": agent_id,
        "outcome": outcome,
    }
    if outcome_id is not None:
        action["outcome_id"] = outcome_id
    action.update(
        note=entry.notes,
        actionarrivaldate=_utc(entry.start),
        actioncompletiondate=_utc(entry.end),
        timetaken=max(entry.hours, 0.0),
        hiddenfromuser=True,
        sendemail=False,
    )
    return action


def _agent_id(ref: str) -> int:
    try:
        agent_id = _valid_id(ref, "agent")
    except PermanentError:
        # The user came from a mapping or the settings: staff must fix that user.
        raise UserError(f"{ref!r} is not a HaloPSA agent id (a number). {MAPPING_ADVICE}") from None
    if agent_id == UNASSIGNED_AGENT_ID:
        raise UserError(
            "Agent 1 is HaloPSA's “Unassigned” placeholder and cannot log time. " + MAPPING_ADVICE
        )
    return agent_id


# --- error classification ---------------------------------------------------------------------
def _message_from(value: Any, depth: int = 0) -> str:
    """The human words inside one of Halo's many error shapes ("" when there are none)."""
    if depth > 3:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return "; ".join(m for m in (_message_from(v, depth + 1) for v in value[:5]) if m)
    if not isinstance(value, Mapping):
        return ""
    parts: list[str] = []
    # OAuth errors {"error": "invalid_client", "error_description": "..."}; .NET exceptions
    # {"ClassName": "...", "Message": "..."}; ASP.NET {"Message", "ExceptionMessage"};
    # {"message"}; {"errors": [...]}; problem details {"title", "detail"}.
    for key in (
        "error",
        "error_description",
        "Message",
        "message",
        "ExceptionMessage",
        "errors",
        "detail",
        "title",
    ):
        text = _message_from(value.get(key), depth + 1) if key in value else ""
        if text and text not in parts:
            parts.append(text)
    if not parts and len(value) == 1:
        # django-psa's fallback for one-key objects of unknown name.
        parts.append(_message_from(next(iter(value.values())), depth + 1))
    if not parts and value.get("ClassName"):
        parts.append(str(value["ClassName"]))
    return ": ".join(p for p in parts if p)


def halo_message(response: Response) -> str:
    """What Halo said, in one readable line ("" when it said nothing useful).

    Halo's own error fields, a JSON string, or a short plain-text answer (Halo answers some
    errors that way); never an HTML page or any other body."""
    body = response.json()
    text = _message_from(body)
    if not text and body is None:
        raw = response.text.strip()
        if raw and not raw.startswith("<"):  # plain text, not an HTML error page
            text = raw
    return " ".join(text.split())[:MESSAGE_CHARS]


def _error(cls: type[PSAError], message: str, response: Response, **extra: Any) -> PSAError:
    return cls(message, status=response.status, body=response.text[:BODY_EXCERPT_CHARS], **extra)


def classify_response(response: Response, *, operation: str) -> PSAError | None:
    """None for success, else the error to raise. ``operation`` is "read" or "create".

    A 401 reaching this function has already had its one token refresh (see ``_call``).
    """
    if operation not in ("read", "create"):
        raise ValueError(f"operation must be 'read' or 'create', not {operation!r}")
    status = response.status
    if 200 <= status < 300:
        return None
    said = halo_message(response)
    colon_said = f": {said}" if said else ""
    retry_after = None
    cls: type[PSAError]
    if 300 <= status < 400:
        # psa.http follows no redirects: the resource server address points elsewhere (http to
        # https, a login page); no retry will fix it.
        where = response.headers.get("Location", "another address")
        cls = ConfigurationError
        message = f"HaloPSA redirected to {where} ({status}): check the Resource server address."
    elif status == 401:
        # Still refused after a fresh token: the application was disabled, its secret
        # rotated, or the token is for another tenant.
        cls = ConfigurationError
        message = f"HaloPSA refused the access token (401){colon_said}. {KEYS_ADVICE}"
    elif status == 403:
        # The token is valid but the API application lacks a permission (or the agent it
        # logs in as cannot see the ticket).
        cls = ConfigurationError
        message = f"HaloPSA refused access (403){colon_said}. {PERMISSIONS_ADVICE}"
    elif status == 404:
        cls, message = NotFoundError, f"HaloPSA found no such record (404){colon_said}"
    elif status == 429:
        # No published limit, but a 429 is back-pressure: honour Retry-After.
        cls, message = RetryableError, "HaloPSA asked us to slow down (429)."
        retry_after = response.retry_after()
    elif status in (400, 409, 422):
        cls, message = _classify_refusal(said or f"HTTP {status} without an error message", status)
    elif status == 500 and re.search(r"(?i)timeout|timed out", response.text):
        # A server-side (SQL) timeout: a read can simply be repeated, but a create may have
        # been committed after all.
        cls = UnknownOutcomeError if operation == "create" else RetryableError
        message = f"HaloPSA timed out ({status}){colon_said}"
    elif status >= 500 and operation == "create":
        # The action may have been stored before the failure: look before re-posting.
        cls = UnknownOutcomeError
        message = f"HaloPSA failed while storing the action ({status}){colon_said}; it may exist."
    elif status >= 500:
        cls, message = RetryableError, f"HaloPSA is having trouble ({status}){colon_said}"
        retry_after = response.retry_after()
    else:
        cls = PermanentError
        message = f"HaloPSA answered HTTP {status}{colon_said}"
    return _error(cls, message, response, retry_after=retry_after)


def _classify_refusal(said: str, status: int) -> tuple[type[PSAError], str]:
    message = f"HaloPSA refused the request ({status}): {said or 'no reason given'}"
    if re.search(r"(?i)outcome", said):
        # The configured outcome does not exist (or none was accepted): every entry of the
        # connection fails the same way until staff fix it.
        return ConfigurationError, f"{message}. {OUTCOME_ADVICE}"
    if re.search(r"(?i)\bagent|who_agentid", said):
        # The mapped agent is unknown or disabled: this user's entries fail until staff fix
        # the mapping or the agent; other users' entries carry on.
        return UserError, f"{message}. {MAPPING_ADVICE}"
    return PermanentError, message


def _token_error(response: Response, url: str) -> PSAError:
    """The error for a failed ``POST {auth}/token``. Nothing is created by it, so no failure
    here is an unknown outcome."""
    said = halo_message(response)
    colon_said = f": {said}" if said else ""
    status = response.status
    if status in (400, 401):
        # {"error": "invalid_client"} for a wrong id or secret, "invalid_scope", or an unknown
        # tenant on a hosted instance.
        message = f"HaloPSA refused the API credentials ({status}){colon_said}. {KEYS_ADVICE}"
        return _error(ConfigurationError, message, response)
    if status == 403:
        message = f"HaloPSA refused to issue a token (403){colon_said}. {PERMISSIONS_ADVICE}"
        return _error(ConfigurationError, message, response)
    if status == 429:
        message = "HaloPSA asked us to slow down while issuing a token (429)."
        return _error(RetryableError, message, response, retry_after=response.retry_after())
    if status >= 500:
        message = f"HaloPSA could not issue a token ({status}){colon_said}"
        return _error(RetryableError, message, response, retry_after=response.retry_after())
    message = (
        f"{url} did not answer like a HaloPSA authorisation server (HTTP {status}){colon_said}: "
        "check the Authorisation server address, e.g. https://acme.halopsa.com/auth."
    )
    return _error(ConfigurationError, message, response)


# --- the backend ------------------------------------------------------------------------------
def _now() -> float:
    return time.time()


class HaloPSABackend(PSABackend):
    vendor: ClassVar[str] = "halopsa"
    label: ClassVar[str] = "HaloPSA"
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField(
            "auth_url",
            "Authorisation server",
            kind="url",
            help_text="From HaloPSA's Configuration > Integrations > HaloPSA API, e.g. "
            "https://acme.halopsa.com/auth (https; plain http only for loopback addresses "
            "such as the local sandbox).",
        ),
        ConfigField(
            "resource_url",
            "Resource server",
            kind="url",
            help_text="e.g. https://acme.halopsa.com/api",
        ),
        # Not "tenant": piadesk's connection form already has a field of that name (the MSP).
        ConfigField(
            "halo_tenant",
            "Tenant",
            required=False,
            help_text="Hosted (cloud) instances only: the tenant name, e.g. acme.",
        ),
        ConfigField(
            "client_id",
            "Client ID",
            help_text="The API application's client ID (Client ID "
            "and Secret (Services) authentication).",
        ),
        ConfigField("client_secret", "Client secret", secret=True),
        ConfigField(
            "outcome",
            "Outcome",
            required=False,
            help_text=f"The action outcome the time entries are logged with (default "
            f"“{DEFAULT_OUTCOME}”). It must exist in HaloPSA.",
        ),
        ConfigField(
            "outcome_id",
            "Outcome ID",
            required=False,
            kind="int",
            help_text="Optional: the outcome's id, sent as well when set.",
        ),
    )
    destination_fields: ClassVar[tuple[str, ...]] = ("auth_url", "resource_url", "halo_tenant")
    # Halo's reads lag its writes by a few seconds: after an unknown outcome, the look-up for
    # our reference must wait at least this long before a "not found" means anything.
    read_after_write_seconds: ClassVar[int] = READ_LAG_SECONDS

    def __init__(self, config: ConnectionConfig, *, http: Any, cache: Cache) -> None:
        super().__init__(config, http=http, cache=cache)
        self.auth_url = normalise_url(config.get("auth_url"))
        self.resource_url = normalise_url(config.get("resource_url"))
        self.tenant = str(config.get("halo_tenant") or "").strip()
        self.client_id = str(config.get("client_id") or "").strip()
        self.client_secret = str(config.get("client_secret") or "")
        self.outcome = str(config.get("outcome") or "").strip() or DEFAULT_OUTCOME
        raw_outcome_id = config.get("outcome_id")
        self.outcome_id: int | None = None
        self._outcome_id_error = ""
        if raw_outcome_id not in (None, ""):
            try:
                self.outcome_id = int(raw_outcome_id)
            except (TypeError, ValueError):
                # Raised when posting (a ConfigurationError), not here: building a backend
                # must not fail for a value that only the write uses.
                self._outcome_id_error = f"The Outcome ID {raw_outcome_id!r} is not a number."

    @classmethod
    def validate_config(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, str]
    ) -> dict[str, str]:
        errors = super().validate_config(settings, secrets)
        addresses = {
            "auth_url": ("the authorisation server address", "https://acme.halopsa.com/auth"),
            "resource_url": ("the resource server address", "https://acme.halopsa.com/api"),
        }
        for name, (what, example) in addresses.items():
            if name in errors:
                continue
            value = settings.get(name)
            if message := address_error(value, what=what, example=f"e.g. {example}"):
                errors[name] = message
            elif name == "auth_url" and normalise_url(value).lower().endswith("/token"):
                errors[name] = f"Leave /token out: enter the server address, e.g. {example}."
        tenant = str(settings.get("halo_tenant") or "").strip()
        if tenant and not TENANT_RE.fullmatch(tenant):
            errors["halo_tenant"] = (
                "Enter the tenant name only (letters, digits, . _ -), e.g. acme."
            )
        outcome_id = settings.get("outcome_id")
        if outcome_id not in (None, ""):
            try:
                valid = not isinstance(outcome_id, bool) and 0 < int(outcome_id) <= INT32_MAX
            except (TypeError, ValueError):
                valid = False
            if not valid:
                errors["outcome_id"] = "Enter the outcome's id: a whole number above 0."
        return errors

    # -- the token -----------------------------------------------------------------------------
    def _token_cache_key(self) -> str:
        # Hashed (memcached-safe, and the secret is never part of a key in clear, as in
        # django-psa); a new secret or tenant gets a new key.
        material = f"{self.auth_url}|{self.tenant}|{self.client_id}|{self.client_secret}"
        digest = hashlib.sha256(material.encode()).hexdigest()[:24]
        return f"psa:halopsa:token:{self.config.cache_key}:{digest}"

    def _fernet(self) -> Fernet:
        # A bearer token is a credential for an hour: it is kept in the cache encrypted with a
        # key derived from the client secret, so a cache dump alone reveals nothing usable.
        key = hashlib.sha256(b"piadesk:halopsa:token-cache:" + self.client_secret.encode())
        return Fernet(base64.urlsafe_b64encode(key.digest()))

    def _cached_token(self) -> str | None:
        raw = self.cache.get(self._token_cache_key())
        if not isinstance(raw, str):
            return None
        try:
            data = json.loads(self._fernet().decrypt(raw.encode()))
            token, expires_at = data["token"], float(data["expires_at"])
        except (InvalidToken, ValueError, TypeError, KeyError):
            return None  # written under another secret, or not by us: a miss
        if expires_at <= _now():
            return None
        return token if isinstance(token, str) and token else None

    def _token(self, *, refresh: bool = False) -> tuple[str, bool]:
        """A bearer token, and whether it was just issued (not from the cache)."""
        key = self._token_cache_key()
        if refresh:
            self.cache.delete(key)
        elif token := self._cached_token():
            return token, False
        url = f"{self.auth_url}/token"
        response = self.http.request(
            "POST",
            url,
            headers=JSON_ACCEPT,
            params={"tenant": self.tenant} if self.tenant else None,
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": "all",
            },
        )
        body = response.json()
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if response.status != 200 or not isinstance(token, str) or not token:
            raise _token_error(response, url)
        try:
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        # Dropped ~60 s before Halo expires it; very short lifetimes keep half.
        keep = (
            lifetime - TOKEN_EXPIRY_MARGIN if lifetime > 2 * TOKEN_EXPIRY_MARGIN else lifetime / 2
        )
        if keep > 0:
            value = json.dumps({"token": token, "expires_at": _now() + keep})
            self.cache.set(key, self._fernet().encrypt(value.encode()).decode(), keep)
        return token, True

    # -- plumbing ------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str = "read",
        not_found: str = "",
        **request: Any,
    ) -> Response:
        """One API call (``request``: params, json_body), classified; raises on failure."""
        url = f"{self.resource_url}/{path}"

        def send(token: str) -> Response:
            headers = {"Authorization": f"Bearer {token}", **JSON_ACCEPT}
            return self.http.request(method, url, headers=headers, **request)

        token, fresh = self._token()
        response = send(token)
        if response.status == 401 and not fresh:
            # The cached token was revoked or expired early: fetch one new token and retry
            # once. A 401 means nothing was stored, so repeating a create is safe.
            token, fresh = self._token(refresh=True)
            response = send(token)
        if response.status == 401:
            self.cache.delete(self._token_cache_key())
        error = classify_response(response, operation=operation)
        if isinstance(error, NotFoundError) and not_found:
            error = NotFoundError(not_found, status=error.status, body=error.body)
        if error is not None:
            raise error
        return response

    def _json(self, response: Response, expected: type | tuple[type, ...], what: str) -> Any:
        body = response.json()
        if not isinstance(body, expected):
            message = f"HaloPSA answered {what} with something other than the expected JSON."
            raise _error(PermanentError, message, response)
        return body

    @staticmethod
    def _records(body: Any, *keys: str) -> list[Mapping[str, Any]]:
        """The records of a list answer: a bare array, or the first of ``{key: [...]}``.

        Halo wraps lists inconsistently (``GET Agent`` is a bare array, paged answers and
        ``GET Actions`` are objects with a record_count); django-psa keeps a key per endpoint.
        """
        items = body
        if isinstance(body, Mapping):
            items = next((body[k] for k in keys if isinstance(body.get(k), list)), [])
        return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []

    def _pages(
        self, path: str, params: Mapping[str, Any], *, keys: tuple[str, ...], pages: int
    ) -> Iterator[Mapping[str, Any]]:
        """Records page by page, stopping on Halo's repeated last page or a short page."""
        seen: set[str] = set()
        for page in range(1, pages + 1):
            paging = {"pageinate": "true", "page_size": PAGE_SIZE, "page_no": page}
            response = self._call("GET", path, params={**params, **paging})
            batch = self._records(self._json(response, (list, dict), path), *keys)
            new = [r for r in batch if str(r.get("id")) not in seen]
            if not new:
                return  # past the last page Halo repeats it (or the endpoint ignores paging)
            seen.update(str(r.get("id")) for r in new)
            yield from new
            if len(batch) < PAGE_SIZE:
                return

    def _agents(self, search: str = "") -> Iterator[Mapping[str, Any]]:
        params = {"includeenabled": "true", "includedisabled": "false"}
        if search:
            params["search"] = search
        # Paged, the answer may be wrapped (django-psa reads "results"); unpaged it is an array.
        records = self._pages(
            "Agent", params, keys=("agents", "results", "records"), pages=MAX_AGENT_PAGES
        )
        return (a for a in records if self._is_active(a))

    @staticmethod
    def _is_active(agent: Mapping[str, Any]) -> bool:
        try:
            agent_id = int(agent["id"])
        except (KeyError, TypeError, ValueError):
            return False
        # ``includedisabled=false`` is asked for, but checked again: it is cheap.
        return agent_id > UNASSIGNED_AGENT_ID and not agent.get("isdisabled")

    @staticmethod
    def _to_user(agent: Mapping[str, Any]) -> PSAUser:
        ref = str(agent.get("id"))
        full = f"{agent.get('firstname') or ''} {agent.get('surname') or ''}".strip()
        name = str(agent.get("name") or full or ref)
        return PSAUser(ref=ref, name=name, email=str(agent.get("email") or ""))

    # -- reads ---------------------------------------------------------------------------------
    def ticket_url(self, ticket_id: str) -> str | None:
        # The agent app lives beside the resource server: https://acme.halopsa.com/api →
        # https://acme.halopsa.com/ticket?id=1001.
        web = self.resource_url.removesuffix("/api")
        if web == self.resource_url:
            return None  # a resource server not at <app>/api: its web app's address is unknown
        return f"{web}/ticket?{urlencode({'id': ticket_id})}"

    def check_connection(self) -> str:
        # The agent the API application logs in as: cheap, and proves token and API work.
        me = self._json(self._call("GET", "Agent/me"), Mapping, "Agent/me")
        who = me.get("name") or me.get("email") or f"agent {me.get('id')}"
        tenant = f" (tenant {self.tenant})" if self.tenant else ""
        outcome = self._check_outcome()
        return f"Connected to HaloPSA as {who}{tenant}; outcome “{outcome}” found"

    def _check_outcome(self) -> str:
        """The configured outcome's name as Halo spells it; ConfigurationError if missing.

        Every action is sent with this outcome, so a missing one would fail every entry.
        ``GET Outcome`` answers a bare array of ``{"id", "outcome", ...}`` (django-psa's
        outcome sync; ``showhidden`` includes hidden ones).
        """
        response = self._call("GET", "Outcome", params={"showhidden": "true"})
        outcomes = self._records(self._json(response, (list, dict), "Outcome"), "outcomes")
        for item in outcomes:
            name = str(item.get("outcome") or "").strip()
            if self.outcome_id is not None:
                if str(item.get("id")) == str(self.outcome_id):
                    return name or str(self.outcome_id)
            elif name.casefold() == self.outcome.casefold():
                return name
        wanted = f"id {self.outcome_id}" if self.outcome_id is not None else f"“{self.outcome}”"
        known = ", ".join(
            f"{o.get('outcome')} ({o.get('id')})" for o in outcomes[:15] if o.get("outcome")
        )
        raise ConfigurationError(
            f"HaloPSA has no action outcome {wanted}"
            + (f" (it has: {known})" if known else "")
            + f". {OUTCOME_ADVICE}"
        )

    def find_user_by_email(self, email: str) -> PSAUser | None:
        email = email.strip()
        if "@" not in email:
            return None  # an empty search would list every agent; no e-mail can match
        # ``search`` is fuzzy (name, e-mail, phone "like" the term): match exactly here.
        for agent in self._agents(search=email):
            if str(agent.get("email") or "").strip().casefold() == email.casefold():
                return self._to_user(agent)
        return None

    def get_user(self, ref: str) -> PSAUser:
        try:
            agent_id = _valid_id(ref, "agent")
        except PermanentError:
            raise NotFoundError(
                f"HaloPSA has no agent {ref!r} (agents have numeric ids)."
            ) from None
        not_found = f"HaloPSA has no agent {agent_id}"
        if agent_id == UNASSIGNED_AGENT_ID:
            raise NotFoundError(f"{not_found}: agent 1 is the “Unassigned” placeholder.")
        response = self._call("GET", f"Agent/{agent_id}", not_found=not_found)
        agent = self._json(response, Mapping, f"agent {agent_id}")
        if str(agent.get("id")) != str(agent_id):
            raise NotFoundError(not_found)
        return self._to_user(agent)

    def list_users(self, search: str = "") -> list[PSAUser]:
        users = [self._to_user(a) for a in self._agents(search=search.strip())]
        return sorted(users, key=lambda u: (u.name.casefold(), int(u.ref)))

    def get_ticket(self, ticket_id: str) -> Ticket:
        number = _valid_id(ticket_id, "ticket")
        not_found = f"HaloPSA has no ticket #{number}"
        response = self._call("GET", f"Tickets/{number}", not_found=not_found)
        body = self._json(response, Mapping, f"ticket #{number}")
        if str(body.get("id") or "0") == "0":
            raise NotFoundError(not_found)  # an empty ticket object: nothing there
        try:
            agent_id = int(body.get("agent_id") or 0)
        except (TypeError, ValueError):
            agent_id = 0
        assignee = None
        # Agent 1 is the "Unassigned" placeholder: never log time for it.
        if agent_id > UNASSIGNED_AGENT_ID:
            ref = str(agent_id)
            # No name rather than the id posing as one (posting looks the name up).
            assignee = PSAUser(ref=ref, name=str(body.get("agent_name") or ""))
        return Ticket(id=str(body.get("id")), assignee=assignee, extra={"agent_id": agent_id})

    # -- the write -----------------------------------------------------------------------------
    def post_time_entry(self, entry: EntryToPost) -> PostResult:
        if self._outcome_id_error:
            raise ConfigurationError(f"{self._outcome_id_error} {OUTCOME_ADVICE}")
        action = build_action_payload(entry, outcome=self.outcome, outcome_id=self.outcome_id)
        response = self._call("POST", "Actions", operation="create", json_body=[action])
        body = response.json()
        # The created action: an object, or (some versions) a list holding it.
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        action_id = body.get("id") if isinstance(body, Mapping) else None
        if not action_id:
            # A success status means it was stored, but we cannot tell which action it is.
            message = "HaloPSA accepted the action but did not return its id."
            raise _error(UnknownOutcomeError, message, response)
        # Action ids are unique per ticket only (django-psa concatenates them the same way).
        entry_id = f"{action['ticket_id']}/{action_id}"
        return PostResult(psa_entry_id=entry_id, start=entry.start, end=entry.end)

    def find_entry(self, ticket_id: str, reference: str) -> FoundEntry | None:
        """The ``"{ticket}/{action}"`` id (and window) of an action on the ticket whose note carries
        ``reference``.

        Halo's reads lag its writes by a few seconds: right after an unknown outcome a
        "None" here is not proof that nothing was stored. Callers must wait at least
        ``READ_LAG_SECONDS`` after the failed attempt before relying on it.
        """
        number = _valid_id(ticket_id, "ticket")
        if not reference:
            return None  # an empty reference would "match" any action
        params = {"ticket_id": number, "count": MAX_ACTIONS}
        response = self._call(
            "GET", "Actions", params=params, not_found=f"HaloPSA has no ticket #{number}"
        )
        # {"record_count": n, "actions": [...]} (a bare array is accepted too). ``GET
        # Actions`` has no paging parameters; ``count`` bounds the answer.
        for action in self._records(self._json(response, (list, dict), "Actions"), "actions"):
            if action.get("id") and reference in str(action.get("note") or ""):
                return FoundEntry(
                    f"{number}/{action['id']}",
                    start=parse_halo_datetime(action.get("actionarrivaldate")),
                    end=parse_halo_datetime(action.get("actioncompletiondate")),
                )
        return None
