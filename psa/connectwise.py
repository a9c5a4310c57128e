"""ConnectWise PSA (Manage) REST API v3.0 backend.

Vendor facts used here (see docs/vendors.md and the ConnectWise OpenAPI 2025.8 spec):

- The API lives at ``{site}/{codebase}apis/3.0/``. The codebase (e.g. ``v2025_1/``) comes from
  ``GET {site}/login/companyinfo/{companyId}`` (no auth); JSON ``null`` means an unknown
  company. It changes when ConnectWise upgrades a company, and a 404 is then how the old
  codebase answers, so a 404 triggers one fresh look-up (and one retry if it changed).
- Auth: ``Authorization: Basic base64("{companyId}+{publicKey}:{privateKey}")`` plus a
  ``clientId`` header (the integration's GUID from developer.connectwise.com) on every call.
- ``POST time/entries`` creates an entry (201 with the object); times are UTC
  ``%Y-%m-%dT%H:%M:%SZ``. ``billableOption`` is left out so the agreement decides it.
  Entries ending after "now" are refused, hence ``adjust_window``.
- Lists filter with ``conditions`` (``field="x"``, ``and``/``or``, ``like "%x%"``) and page
  with ``page`` (1-based) / ``pageSize`` (<= 1000); a ``Link`` header with ``rel="next"``
  says there is another page.
- Errors: 400 ``{"code":"InvalidObject","message","errors":[{"code","message","resource",
  "field"}]}``; 401 bad keys; 403 ``{"code":"Security",...}`` missing role permission; 404
  unknown record; 429 from Cloudflare with a wait hint. No idempotency key exists: the run's
  reference is in the notes and ``find_entry_by_reference`` looks for it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from django.conf import settings as django_settings

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

CODEBASE_CACHE_SECONDS = 24 * 3600
BODY_EXCERPT_CHARS = 1000
PAGE_SIZE = 1000  # ConnectWise's maximum pageSize
MAX_MEMBERS = 5000  # a picker never needs more; bounds the paging loop
MAX_ENTRY_PAGES = 20  # 20,000 entries on one ticket is far beyond any real ticket
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
JSON_ACCEPT = {"Accept": "application/json"}
MEMBER_FIELDS = "id,identifier,firstName,lastName,primaryEmail,officeEmail"
# Codebases look like "v4_6_release/" or "v2025_1/"; anything else must not reach a URL path.
CODEBASE_RE = re.compile(r"[A-Za-z0-9._-]+/")
KEYS_ADVICE = "check the company id, public and private key"
ROLE_ADVICE = (
    "The API member's security role needs Time Entry (add, inquire), Service Ticket (inquire) "
    "and System Members (inquire)."
)


def normalise_site_url(url: str) -> str:
    return url.strip().rstrip("/")


def _site_url_error(value: Any) -> str | None:
    return address_error(
        value, what="the site address", example="e.g. https://api-na.myconnectwise.net"
    )


def _literal(value: str) -> str | None:
    """``value`` as a conditions string literal, or None when it cannot be one.

    ConnectWise documents no escape for ``"`` or ``\\`` inside a literal, so such a value
    would end the literal early and change the query (e.g. widen a member look-up). They
    are legal only in quoted local parts of e-mail addresses, which real members do not use.
    """
    if not value or '"' in value or "\\" in value:
        return None
    return f'"{value}"'


def _has_next_page(response: Response) -> bool:
    # e.g. <https://.../system/members?page=2>; rel="next", <...>; rel="last"
    links = re.findall(r"<[^>]*>([^<]*)", response.headers.get("Link") or "")
    return any(re.search(r'rel="?next"?(?![\w-])', params) for params in links)


def _valid_ticket_id(ticket_id: Any) -> str:
    value = str(ticket_id).strip()
    # ASCII digits only (str.isdigit accepts "²"); 10 digits covers ConnectWise's int32 ids.
    if not re.fullmatch(r"[0-9]{1,10}", value):
        raise PermanentError(f"{ticket_id!r} is not a ConnectWise ticket number (digits only).")
    return value


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(TIME_FORMAT)


def build_time_entry_payload(entry: EntryToPost) -> dict[str, Any]:
    """The exact JSON for ``POST time/entries``.

    No ``billableOption`` (ConnectWise stamps it from the ticket's agreement) and no
    ``actualHours`` (ConnectWise computes it from the times).
    """
    return {
        "chargeToId": int(_valid_ticket_id(entry.ticket_id)),
        "chargeToType": "ServiceTicket",
        "member": {"identifier": entry.user.ref},
        "timeStart": _utc(entry.start),
        "timeEnd": _utc(entry.end),
        "notes": entry.notes,
        "addToInternalAnalysisFlag": True,  # internal: customers must not get automation notes
        "emailResourceFlag": False,
        "emailContactFlag": False,
        "emailCcFlag": False,
    }


# --- error classification -------------------------------------------------------------------
def _error(cls: type[PSAError], message: str, response: Response, **extra: Any) -> PSAError:
    return cls(message, status=response.status, body=response.text[:BODY_EXCERPT_CHARS], **extra)


def _vendor_message(body: Any) -> str:
    message = body.get("message") if isinstance(body, Mapping) else None
    return message.strip() if isinstance(message, str) else ""


def classify_response(response: Response, *, operation: str) -> PSAError | None:
    """None for success, else the error to raise. ``operation`` is "read" or "create"."""
    if operation not in ("read", "create"):
        raise ValueError(f"operation must be 'read' or 'create', not {operation!r}")
    status, body = response.status, response.json()
    if 200 <= status < 300:
        return None
    said = f": {_vendor_message(body)}" if _vendor_message(body) else ""
    retry_after = None
    cls: type[PSAError]
    if 300 <= status < 400:
        # psa.http follows no redirects: the site address points elsewhere (http -> https, a
        # login page), which no retry will fix.
        where = response.headers.get("Location", "another address")
        cls, message = ConfigurationError, f"ConnectWise redirected to {where} ({status}): "
        message += "check the Site address."
    elif status == 401:
        # Wrong company id, public or private key; ConnectWise does not say which.
        cls, message = ConfigurationError, "ConnectWise rejected the API keys (401): " + KEYS_ADVICE
    elif status == 403:
        # {"code":"Security","message":"You do not have security permission..."}: the keys are
        # valid but the API member's security role lacks a permission.
        cls, message = ConfigurationError, f"ConnectWise refused access (403){said}. {ROLE_ADVICE}"
    elif status == 404:
        # An unknown record (a stale codebase was ruled out before classification).
        cls, message = NotFoundError, f"ConnectWise found no such record (404){said}"
    elif status == 429:
        # Cloudflare throttling in front of ConnectWise, with a Retry-After hint.
        cls, message = RetryableError, "ConnectWise asked us to slow down (429)."
        retry_after = response.retry_after()
    elif status in (400, 422):
        # Only ConnectWise's own error fields are quoted, never a raw body: an address that is
        # not ConnectWise's must not have its answer shown in the admin (issue 9).
        cls, message = _classify_validation(body, f"HTTP {status} without an error message")
    elif status == 500 and re.search(r"(?i)timeout|timed out", response.text):
        # A server-side timeout: a read can simply be repeated, but a create may have been
        # committed after all.
        cls = UnknownOutcomeError if operation == "create" else RetryableError
        message = f"ConnectWise timed out (500){said}"
    elif status >= 500 and operation == "create":
        # The entry may have been stored before the failure: look before re-posting.
        cls = UnknownOutcomeError
        message = f"ConnectWise failed while storing the entry ({status}){said}; it may exist."
    elif status >= 500:
        cls, message = RetryableError, f"ConnectWise is having trouble ({status}){said}"
        retry_after = response.retry_after()
    else:
        cls, message = PermanentError, f"ConnectWise answered HTTP {status}{said}"
    return _error(cls, message, response, retry_after=retry_after)


def _classify_validation(body: Any, fallback: str) -> tuple[type[PSAError], str]:
    # The InvalidObject envelope: {"code","message","errors":[{"code","message","resource",
    # "field"}]}, one entry per offending field.
    raw = body.get("errors") if isinstance(body, Mapping) else None
    fields = [
        (str(e.get("field") or ""), str(e.get("message") or e.get("code") or ""))
        for e in (raw if isinstance(raw, list) else [])
        if isinstance(e, Mapping)
    ]
    readable = "; ".join(f"{f}: {m}" if f else m for f, m in fields)
    message = f"ConnectWise refused the request: {readable or _vendor_message(body) or fallback}"
    if "future" in message.lower():
        # Entries ending after ConnectWise's "now" are refused: its clock is behind ours. The
        # next attempt recomputes the window with a later "now", so it can succeed.
        return RetryableError, f"{message} (clock difference; trying again later)"
    if any(f.lower() == "member" for f, _ in fields):
        # The mapped member cannot log time (inactive, not allowed): this user's entries fail
        # until staff fix the mapping or the member; other users' entries carry on.
        return UserError, f"{message}. Check the user mapping for this member."
    return PermanentError, message


# --- the backend ------------------------------------------------------------------------------
class ConnectWiseBackend(PSABackend):
    vendor: ClassVar[str] = "connectwise"
    label: ClassVar[str] = "ConnectWise PSA"
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField(
            "site_url",
            "Site address",
            kind="url",
            help_text="e.g. https://api-na.myconnectwise.net (https; plain http only for "
            "loopback addresses such as the local sandbox).",
        ),
        ConfigField("company_id", "Company ID", help_text="The company you log in with."),
        ConfigField("public_key", "Public key", help_text="API member's public key."),
        ConfigField("private_key", "Private key", secret=True),
    )
    destination_fields: ClassVar[tuple[str, ...]] = ("site_url", "company_id")
    # ConnectWise's deep link to a service ticket in the web client (the "v4_6_release" path
    # is served by every codebase, cloud and on-premises).
    TICKET_PAGE = "/v4_6_release/services/system_io/Service/fv_sr100_request.rpp"

    def __init__(self, config: ConnectionConfig, *, http: Any, cache: Cache) -> None:
        super().__init__(config, http=http, cache=cache)
        self.site_url = normalise_site_url(str(config.get("site_url") or ""))
        self.company_id = str(config.get("company_id") or "").strip()
        default_client_id = getattr(django_settings, "CONNECTWISE_CLIENT_ID", "")
        self.client_id = str(config.settings.get("client_id") or default_client_id or "")

    @classmethod
    def validate_config(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, str]
    ) -> dict[str, str]:
        errors = super().validate_config(settings, secrets)
        if "site_url" not in errors and (message := _site_url_error(settings.get("site_url"))):
            errors["site_url"] = message
        return errors

    # -- plumbing ------------------------------------------------------------------------------
    def _codebase_cache_key(self) -> str:
        # Hashed so any site address makes a short, cache-safe key (memcached forbids spaces).
        digest = hashlib.sha256(f"{self.site_url}|{self.company_id}".encode()).hexdigest()[:24]
        return f"psa:connectwise:codebase:{self.config.cache_key}:{digest}"

    def _codebase(self, *, refresh: bool = False) -> tuple[str, bool]:
        """The company's codebase, and whether it was just looked up (not from the cache)."""
        key = self._codebase_cache_key()
        if refresh:
            self.cache.delete(key)
        elif cached := self.cache.get(key):
            return cached, False
        url = f"{self.site_url}/login/companyinfo/{quote(self.company_id, safe='')}"
        response = self.http.request("GET", url, headers=JSON_ACCEPT)
        if response.status == 429 or response.status >= 500:
            message = f"ConnectWise did not answer the company look-up ({response.status})."
            raise _error(RetryableError, message, response, retry_after=response.retry_after())
        info = response.json()
        # JSON null is ConnectWise's "unknown company"; anything but JSON (a login page, a
        # 404) means the address is not a ConnectWise site.
        is_json = isinstance(info, Mapping) or response.text.strip() == "null"
        codebase = str((info if isinstance(info, Mapping) else {}).get("Codebase") or "")
        codebase = codebase.strip().strip("/") + "/"
        if response.status != 200 or not is_json:
            message = f"{self.site_url} did not answer like a ConnectWise site (HTTP "
            message += f"{response.status}): check the Site address."
        elif codebase == "/":
            message = f"ConnectWise does not know company id {self.company_id!r} at "
            message += f"{self.site_url}: check the Company ID"
        elif not CODEBASE_RE.fullmatch(codebase):
            message = f"ConnectWise gave an unexpected codebase {codebase!r} for company "
            message += f"{self.company_id!r} at {self.site_url}."
        else:
            self.cache.set(key, codebase, CODEBASE_CACHE_SECONDS)
            return codebase, True
        raise _error(ConfigurationError, message, response)

    def _headers(self) -> dict[str, str]:
        if not self.client_id:
            raise ConfigurationError(
                "No ConnectWise clientId is configured: set CONNECTWISE_CLIENT_ID (the GUID "
                "from developer.connectwise.com)."
            )
        user = f"{self.company_id}+{self.config.get('public_key', '')}"
        token = base64.b64encode(f"{user}:{self.config.get('private_key', '')}".encode()).decode()
        return {"Authorization": f"Basic {token}", "clientId": self.client_id, **JSON_ACCEPT}

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
        headers = self._headers()
        codebase, fresh = self._codebase()

        def send(codebase: str) -> Response:
            url = f"{self.site_url}/{codebase}apis/3.0/{path}"
            return self.http.request(method, url, headers=headers, **request)

        response = send(codebase)
        if response.status == 404 and not fresh:
            # The cached codebase may be stale (company upgraded). Look it up once; retrying
            # makes sense only if it changed (same URL, same 404 otherwise). A 404 means
            # nothing was stored, so retrying a create cannot duplicate the entry.
            new_codebase, _ = self._codebase(refresh=True)
            if new_codebase != codebase:
                response = send(new_codebase)
        error = classify_response(response, operation=operation)
        if isinstance(error, NotFoundError) and not_found:
            error = NotFoundError(not_found, status=error.status, body=error.body)
        if error is not None:
            raise error
        return response

    def _json(self, response: Response, expected: type, what: str) -> Any:
        body = response.json()
        if not isinstance(body, expected):
            message = f"ConnectWise answered {what} with something other than the expected JSON."
            raise _error(PermanentError, message, response)
        return body

    def _records(
        self, path: str, params: Mapping[str, Any], *, pages: int
    ) -> Iterator[Mapping[str, Any]]:
        """Records page by page while ConnectWise's Link header announces a next page.

        We request ``page + 1`` ourselves rather than fetch the Link URL, so the credentials
        only ever go to the configured site and our conditions are always applied.
        """
        for page in range(1, pages + 1):
            response = self._call("GET", path, params={**params, "page": page})
            batch = self._json(response, list, path)
            yield from (record for record in batch if isinstance(record, Mapping))
            if not batch or not _has_next_page(response):
                return

    def _members(self, conditions: str, **params: Any) -> list[Mapping[str, Any]]:
        params = {"conditions": conditions, "fields": MEMBER_FIELDS, **params}
        members = self._json(self._call("GET", "system/members", params=params), list, "members")
        return [m for m in members if isinstance(m, Mapping)]

    @staticmethod
    def _match(members: list[Mapping[str, Any]], field: str, wanted: str) -> PSAUser | None:
        for member in members:
            if str(member.get(field) or "").casefold() == wanted.casefold():
                return ConnectWiseBackend._to_user(member)
        return None

    @staticmethod
    def _to_user(member: Mapping[str, Any]) -> PSAUser:
        identifier = str(member.get("identifier") or "")
        name = f"{member.get('firstName') or ''} {member.get('lastName') or ''}".strip()
        email = member.get("primaryEmail") or member.get("officeEmail") or ""
        return PSAUser(
            ref=identifier, name=name or identifier, email=email, extra={"id": member.get("id")}
        )

    # -- reads ---------------------------------------------------------------------------------
    def ticket_url(self, ticket_id: str) -> str | None:
        query = urlencode({"service_recid": ticket_id, "companyName": self.company_id})
        return f"{self.site_url}{self.TICKET_PAGE}?{query}"

    def check_connection(self) -> str:
        info = self._json(self._call("GET", "system/info"), Mapping, "system/info")
        version = f" {info['version']}" if info.get("version") else ""
        return f"Connected to ConnectWise PSA{version} (company {self.company_id})"

    def find_user_by_email(self, email: str) -> PSAUser | None:
        email = email.strip()
        if (value := _literal(email)) is None:
            return None  # see _literal: no member can be looked up safely by it
        conditions = f"(primaryEmail={value} or officeEmail={value}) and inactiveFlag=false"
        members = self._members(conditions, pageSize=25)
        # The server may match loosely (collation, trimming): require an exact match here,
        # preferring a primary e-mail match over an office e-mail match.
        primary = self._match(members, "primaryEmail", email)
        return primary or self._match(members, "officeEmail", email)

    def get_user(self, ref: str) -> PSAUser:
        value = _literal(ref)
        user = (
            self._match(self._members(f"identifier={value}"), "identifier", ref) if value else None
        )
        if user is None:
            raise NotFoundError(f"ConnectWise has no member {ref!r}")
        return user

    def list_users(self, search: str = "") -> list[PSAUser]:
        conditions = "inactiveFlag=false"
        # Quotes and backslashes cannot appear in a condition literal (see _literal); drop them.
        if term := "".join(ch for ch in search.strip() if ch not in '"\\'):
            fields = ("identifier", "firstName", "lastName", "primaryEmail")
            conditions += " and (" + " or ".join(f'{f} like "%{term}%"' for f in fields) + ")"
        params = {"conditions": conditions, "fields": MEMBER_FIELDS, "pageSize": PAGE_SIZE}
        records = self._records("system/members", params, pages=MAX_MEMBERS // PAGE_SIZE)
        users = [self._to_user(m) for m in records if m.get("identifier")][:MAX_MEMBERS]
        return sorted(users, key=lambda u: (u.name.casefold(), u.ref.casefold()))

    def get_ticket(self, ticket_id: str) -> Ticket:
        ticket_id = _valid_ticket_id(ticket_id)
        not_found = f"ConnectWise has no ticket #{ticket_id}"
        params = {"fields": "id,owner,resources"}
        response = self._call(
            "GET", f"service/tickets/{ticket_id}", params=params, not_found=not_found
        )
        body = self._json(response, Mapping, f"ticket #{ticket_id}")
        owner = body.get("owner")  # {id, identifier, name} or null when unassigned
        assignee = None
        if isinstance(owner, Mapping) and owner.get("identifier"):
            ref = str(owner["identifier"])
            assignee = PSAUser(
                ref=ref, name=str(owner.get("name") or ref), extra={"id": owner.get("id")}
            )
        # ``resources`` is one comma-separated string of member identifiers.
        resources = [r.strip() for r in str(body.get("resources") or "").split(",") if r.strip()]
        return Ticket(
            id=str(body.get("id") or ticket_id), assignee=assignee, extra={"resources": resources}
        )

    # -- the write -----------------------------------------------------------------------------
    def adjust_window(
        self, start: dt.datetime, end: dt.datetime, now: dt.datetime
    ) -> tuple[dt.datetime, dt.datetime]:
        # ConnectWise refuses entries ending after its "now". Ending at the start of the
        # current minute leaves up to a minute of slack for clock differences between us.
        latest_end = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
        if end > latest_end:
            return start - (end - latest_end), latest_end
        return start, end

    def post_time_entry(self, entry: EntryToPost) -> PostResult:
        payload = build_time_entry_payload(entry)
        response = self._call("POST", "time/entries", operation="create", json_body=payload)
        body = response.json()
        entry_id = body.get("id") if isinstance(body, Mapping) else None
        if entry_id is None:
            # A success status means it was stored, but we cannot tell which entry it is.
            message = "ConnectWise accepted the time entry but did not return its id."
            raise _error(UnknownOutcomeError, message, response)
        return PostResult(psa_entry_id=str(entry_id), start=entry.start, end=entry.end)

    def find_entry(self, ticket_id: str, reference: str) -> FoundEntry | None:
        ticket_id = _valid_ticket_id(ticket_id)
        if not reference:
            return None  # an empty reference would "match" any entry
        params = {
            "conditions": f'chargeToType="ServiceTicket" and chargeToId={ticket_id}',
            "fields": "id,notes,timeStart,timeEnd",
            "pageSize": PAGE_SIZE,
        }
        # Matched here, not with a notes "contains" condition: that is not reliable across
        # ConnectWise versions.
        for record in self._records("time/entries", params, pages=MAX_ENTRY_PAGES):
            if record.get("id") is not None and reference in str(record.get("notes") or ""):
                # The window ConnectWise holds: the one sent, possibly moved back.
                return FoundEntry(
                    str(record["id"]),
                    start=parse_utc(record.get("timeStart")),
                    end=parse_utc(record.get("timeEnd")),
                )
        return None
