"""Autotask (Datto/Kaseya) PSA REST API v1.0 backend.

Vendor facts used here (docs/vendors.md, checked against Autotask's developer help and
established clients; sources in the comments where a rule is applied):

- **Zones.** Each Autotask database lives in one zone. ``GET {discovery}v1.0/zoneInformation
  ?user={apiUserName}`` (no auth headers; discovery is ``https://webservices.autotask.net/
  atservicesrest/``) answers ``{"zoneName","url","webUrl","ci"}``, ``url`` being e.g.
  ``https://webservices5.autotask.net/atservicesrest/``. An unknown user is **HTTP 500**
  ``{"errors":["Zone information could not be determined"]}`` (django-autotask
  ``get_zone_info``; KelvinTegelaar/AutotaskAPI#17). The zone is cached per connection and
  looked up again after a 401 (a database moved to another zone).
- **Auth** on every other call: headers ``ApiIntegrationCode`` (the API user's tracking
  identifier), ``UserName``, ``Secret``, with ``Content-Type: application/json``. A wrong
  secret is 401; a wrong user name or integration code is **500** (apigrate/autotask-restapi#19),
  e.g. ``{"errors":["IntegrationCode is invalid."]}``.
- **Create**: ``POST v1.0/TimeEntries`` (TimeEntries has no parent entity: ``POST
  Tickets/{id}/TimeEntries`` is a 404 — WYRE-AI/autotask-mcp#277) answers ``{"itemId": N}``.
  Times are UTC. ``hoursWorked`` must be > 0 and <= 24 (TimeEntry entity, "Conditions and
  requirements"). Notes are up to 8000 characters (docs/vendors.md; authoritative lengths are in
  ``TimeEntries/entityInformation/fields``).
- **roleID** is mandatory on ticket time ("TimeEntries for Tickets must have a roleID"); it
  "must be the same as ticketID.assignedResourceRoleID ... except when the system setting
  'Allow users to modify Role when creating/editing time entries on tickets' is enabled"
  (TimeEntriesEntity.htm, quoted in WYRE-AI/autotask-mcp#280); a wrong one is "Role does not
  exist or is invalid". We send the ticket's assigned role for the assignee, and otherwise the
  resource's default service-desk role (``ResourceServiceDeskRoles`` with ``isDefault``;
  ``Resources.defaultServiceDeskRoleID`` "cannot be queried"), else the connection's Role ID.
- **Proxy time entry.** "TimeEntries respects Autotask Proxy Time Entry": by default only the
  resource itself may create its time; the system setting (Admin → Features & Settings →
  Application-wide (Shared) Features → System Settings → Timesheets → Proxy Time Entry)
  "Enabled for Timesheet Approvers and Administrators" lets administrators create time for any
  active resource. Alternatively the API user impersonates the resource with header
  ``ImpersonationResourceId: {resourceID}``, which the resource's security level must allow
  ("Allow impersonation of resources with this security level"); API-only levels and some
  license types cannot be impersonated. A refusal is **HTTP 500** ``{"errors":["The logged in
  Resource does not have the adequate permissions to create this entity type."]}``
  (django-autotask ``api_rest.FORBIDDEN_ERROR_MESSAGE``).
- **Errors**: validation and business rules are usually HTTP 500 ``{"errors":["..."]}``, so a
  500 is read by its message, never taken for an outage by default (``classify_response``).
- **Queries**: ``POST {Entity}/query`` with ``{"MaxRecords": <=500, "filter": [...]}``; filter
  items are ``{"op","field","value"}`` or ``{"op":"and"|"or","items":[...]}``; the top-level
  list is AND-ed. Answers ``{"items":[...],"pageDetails":{"count","requestCount",
  "prevPageUrl","nextPageUrl"}}``; paging is by cursor: follow ``nextPageUrl`` (GET).
- **Limits** (nothing enforced here; rate limiting is added elsewhere): 10,000 requests per
  rolling hour per Autotask *database*, shared by every integration; responses slow down
  above ~50% and the API is blocked at 100% (REST_Thresholds_Limits.htm). At most 3
  concurrent requests per endpoint per integration (tracking identifier) (ThreadLimiting.htm;
  zoneInformation is exempt). ``GET v1.0/ThresholdInformation`` reports the usage.
- No idempotency key exists: the run's reference is in ``summaryNotes`` (and is the whole
  ``internalNotes``) and ``find_entry_by_reference`` looks for it. TimeEntries queries respect
  "Can view non-billable time entries": the API user needs it to see every entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

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

DEFAULT_DISCOVERY_URL = "https://webservices.autotask.net/atservicesrest/"
API = "v1.0/"
ZONE_EXAMPLE = "https://webservices5.autotask.net/atservicesrest/"
ZONE_CACHE_SECONDS = 24 * 3600
BODY_EXCERPT_CHARS = 1000
MAX_RECORDS = 500  # Autotask's maximum MaxRecords per query page
MAX_USERS = 5000  # a picker never needs more; bounds the paging loop
MAX_ENTRY_PAGES = 20
NOTES_MAX_CHARS = 8000
MAX_HOURS = 24
TRUNCATION_MARK = "…"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Autotask ids are 64-bit integers; digits only keeps anything else out of URL paths.
ID_RE = re.compile(r"[0-9]{1,18}")

PROXY_FIX = (
    "Enable Proxy Time Entry for administrators (Admin → Features & Settings → "
    "Application-wide (Shared) Features → System Settings → Timesheets → Proxy Time Entry: "
    "'Enabled for Timesheet Approvers and Administrators') and make sure the API user's "
    "security level has admin access to Service Desk (Tickets); or turn on impersonation on "
    "the piadesk connection."
)
IMPERSONATION_FIX = (
    "Allow impersonation for that resource's security level (Admin → Resources/Users (HR) → "
    "Security Levels → Web Services API → 'Allow impersonation of resources with this "
    "security level') and let the API user's security level impersonate for time entries; "
    "some license types (e.g. Contractor, Time & Attendance Only, Dashboard User) cannot be "
    "impersonated. Or turn impersonation off on the connection and enable Proxy Time Entry "
    "for administrators (System Settings → Timesheets)."
)
ROLE_FIX = (
    "piadesk sends the ticket's assigned role when the resource is the ticket's assigned "
    "resource and otherwise the resource's default service desk role (trying the ticket's "
    "role once when that is refused): give the resource that role among its service desk "
    "roles in Autotask, allow other roles (System Settings → 'Allow users to modify Role when "
    "creating/editing time entries on tickets'), or set Role ID on the connection."
)
CREDENTIALS_FIX = "check the API user name and the API integration code (tracking identifier)"


# --- small pure helpers ---------------------------------------------------------------------
def normalise_base_url(url: str) -> str:
    """A base address ending in exactly one "/", so that ``base + "v1.0/..."`` is right."""
    return url.strip().rstrip("/") + "/"


def _web_url(value: Any) -> str:
    if not isinstance(value, str) or address_error(
        value.strip(), what="a web address", example="e.g. https://ww5.autotask.net/"
    ):
        return ""
    return normalise_base_url(value)


def _valid_id(value: Any, what: str) -> int:
    text = str(value).strip()
    if not ID_RE.fullmatch(text):
        raise PermanentError(f"{value!r} is not an Autotask {what} id (digits only).")
    return int(text)


def _resource_id(user: PSAUser) -> int:
    text = str(user.ref).strip()
    if not ID_RE.fullmatch(text):
        # A mapping made by hand with a name instead of the numeric resource id (or a
        # specified user from another PSA): this user's entries fail until staff fix it.
        raise UserError(
            f"PSA user {user.ref!r} is not an Autotask resource id (digits only): fix the user "
            "mapping or the specified PSA user."
        )
    return int(text)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _positive_int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(TIME_FORMAT)


def fit_notes(notes: str, reference: str, limit: int = NOTES_MAX_CHARS) -> str:
    """``notes`` cut to ``limit`` characters, keeping the line(s) with ``reference`` at the end.

    The reference is how piadesk finds its entry again after an unknown outcome, so it must
    survive any truncation.
    """
    if len(notes) <= limit:
        return notes
    lines = notes.splitlines()
    reference_lines = [line for line in lines if reference and reference in line]
    keep = "\n".join(reference_lines) if reference_lines else reference
    keep = keep[-limit:]
    rest = "\n".join(line for line in lines if line not in reference_lines)
    room = limit - len(keep) - len(TRUNCATION_MARK) - 1
    if room <= 0:
        return keep
    return f"{rest[:room].rstrip()}{TRUNCATION_MARK}\n{keep}"


def hours_worked(entry: EntryToPost) -> float:
    """Decimal hours, two places; PermanentError outside Autotask's (0, 24]."""
    hours = round((entry.end - entry.start).total_seconds() / 3600, 2)
    # "The TimeEntry.HoursWorked value must be > 0 and <= 24" (TimeEntry entity conditions).
    if not 0 < hours <= MAX_HOURS:
        raise PermanentError(
            f"Autotask accepts 0 < hoursWorked <= {MAX_HOURS}; this entry would be {hours} "
            f"hours ({_utc(entry.start)} – {_utc(entry.end)})."
        )
    return hours


def build_time_entry_payload(entry: EntryToPost, role_id: int) -> dict[str, Any]:
    """The exact JSON for ``POST v1.0/TimeEntries`` (raises PermanentError before sending).

    No ``billingCodeID``/``isNonBillable``: Autotask takes them from the ticket.
    """
    hours = hours_worked(entry)
    start = entry.start.astimezone(dt.UTC)
    return {
        "ticketID": _valid_id(entry.ticket_id, "ticket"),
        "resourceID": _resource_id(entry.user),
        "roleID": int(role_id),
        # The API measures date-times in UTC; the day worked is the start's UTC day.
        "dateWorked": start.strftime("%Y-%m-%dT00:00:00Z"),
        "startDateTime": _utc(entry.start),
        "endDateTime": _utc(entry.end),
        "hoursWorked": hours,
        "summaryNotes": fit_notes(entry.notes, entry.reference),
        "internalNotes": entry.reference[:NOTES_MAX_CHARS],
    }


def _assignee_role(ticket: Ticket, resource_id: int) -> int | None:
    """The ticket's assigned role when ``resource_id`` is the ticket's assigned resource."""
    assignee = ticket.assignee
    if assignee is None or str(assignee.ref).strip() != str(resource_id):
        return None
    return _positive_int(ticket.extra.get("assigned_role_id")) or _positive_int(
        assignee.extra.get("role_id")
    )


class RoleRefused(PermanentError):
    """Autotask refused the entry's roleID: nothing was stored (see ``post_time_entry``)."""


def _role_advice(
    refused: PSAError, entry: EntryToPost, role: int, ticket_role: int | None
) -> PermanentError:
    tried = f"role {role}"
    if ticket_role is not None and ticket_role != role:
        tried += f" and then the ticket's assigned role {ticket_role}"
    elif ticket_role is None:
        tried += " (the ticket has no assigned role)"
    message = (
        f"Autotask refused {tried} for resource {entry.user.ref} on ticket {entry.ticket_id}: "
        f"{refused.message} {ROLE_FIX}"
    )
    return PermanentError(message, status=refused.status, body=refused.body)


# --- what a connection test can tell ----------------------------------------------------------
ENTRY_ACCESS_FIX = (
    "Let the API user's security level add time entries (Admin → Account Settings & Users → "
    "Resources/Users (HR) → Security Levels), then test again."
)
PROXY_CHECK = (
    "Whether Autotask lets this API user log time for other resources (Proxy Time Entry) "
    "shows on the first entry: Autotask's API does not tell. It needs System Settings → "
    "Timesheets → Proxy Time Entry 'Enabled for Timesheet Approvers and Administrators' with "
    "the API user an administrator of Service Desk, or impersonation on this connection; "
    "without either, the first entry is refused and the connection pauses with the fix."
)
IMPERSONATION_CHECK = (
    "Each entry is logged as its resource (impersonation): the API user's security level must "
    "allow impersonation for time entries, and each resource's security level must 'Allow "
    "impersonation of resources with this security level' (API-only, Contractor, Time & "
    "Attendance Only and Dashboard User resources cannot be impersonated). Autotask's API does "
    "not tell in advance; a refusal fails only that resource's entries."
)
# userAccessForCreate: 0 (None), 1 (All), 2 (Restricted) (REST_EntityInformationCall); some
# clients see the names instead of the numbers, so both are read.
CREATE_ACCESS = {"0": "none", "1": "all", "2": "restricted"}


def _create_access(info: Any) -> str | None:
    """"none", "all" or "restricted" from an entityInformation ``info``; None when unreadable."""
    if not isinstance(info, Mapping):
        return None
    if info.get("canCreate") is False:
        return "none"
    raw = info.get("userAccessForCreate")
    if raw is None or isinstance(raw, bool):
        return None
    text = str(raw).strip().casefold()
    return CREATE_ACCESS.get(text) or (text if text in CREATE_ACCESS.values() else None)


def _access_words(info: Any) -> str:
    if isinstance(info, Mapping) and info.get("canCreate") is False:
        return "canCreate false"
    raw = info.get("userAccessForCreate") if isinstance(info, Mapping) else None
    return f"userAccessForCreate {raw!r}"


# --- error classification -------------------------------------------------------------------
def _error(cls: type[PSAError], message: str, response: Response, **extra: Any) -> PSAError:
    return cls(message, status=response.status, body=response.text[:BODY_EXCERPT_CHARS], **extra)


def vendor_errors(body: Any) -> list[str]:
    """The messages of Autotask's ``{"errors": [...]}`` envelope (strings or {"message"})."""
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if not isinstance(errors, list):
        return []
    messages = []
    for item in errors:
        text = item.get("message") if isinstance(item, Mapping) else item
        if isinstance(text, str) and text.strip():
            messages.append(text.strip())
    return messages


def _quote(messages: list[str]) -> str:
    return "; ".join(f'"{m}"' for m in messages)


def _has(messages: list[str], *needles: str) -> bool:
    text = " ".join(messages).casefold()
    return any(needle.casefold() in text for needle in needles)


PERMISSION_WORDS = ("does not have the adequate permissions", "proxy", "impersonat")
CREDENTIAL_WORDS = ("integrationcode", "integration code", "username", "user name")
ROLE_WORDS = (
    "must have a roleid",
    "role does not exist or is invalid",
    # A stricter instance: "The roleID must match the ticket's assigned resource role".
    "roleid must match",
    "assigned resource role",
)
# The entry's resource itself is unusable (inactive, unknown): that user's problem.
RESOURCE_WORDS = ("is not an active resource", "resource is inactive", "resource does not exist")
TRANSIENT_WORDS = ("timeout", "timed out", "deadlock")
# Wording unconfirmed: a threshold refusal is decided before the request is processed.
THRESHOLD_WORDS = ("threshold", "too many requests")


def classify_response(
    response: Response, *, operation: str, impersonating: bool = False
) -> PSAError | None:
    """None for success, else the error to raise. ``operation`` is "read" or "create".

    ``impersonating``: the request carried ``ImpersonationResourceId`` (changes the advice
    for a permission refusal, not the class).
    """
    if operation not in ("read", "create"):
        raise ValueError(f"operation must be 'read' or 'create', not {operation!r}")
    status = response.status
    if 200 <= status < 300:
        return None
    messages = vendor_errors(response.json())
    said = f" Autotask said: {_quote(messages)}." if messages else ""
    may_have_landed = UnknownOutcomeError if operation == "create" else RetryableError
    retry_after = None
    cls: type[PSAError]
    if 300 <= status < 400:
        # psa.http follows no redirects: the address points elsewhere; no retry will fix it.
        where = response.headers.get("Location", "another address")
        cls = ConfigurationError
        message = f"Autotask redirected to {where} ({status}): check the zone discovery address."
    elif status == 401:
        # A wrong Secret is 401 (a wrong user name or integration code is a 500, below).
        cls = ConfigurationError
        message = f"Autotask rejected the API user's credentials (401): check the Secret.{said}"
    elif status == 403:
        cls = ConfigurationError
        message = (
            f"Autotask refused access (403).{said} Check the API user's security level "
            "(Web Services API permissions for Tickets, Resources and Time Entries)."
        )
    elif status == 404:
        # An unknown record, or a route that does not exist (e.g. Tickets/{id}/TimeEntries).
        cls, message = NotFoundError, f"Autotask found no such record (404).{said}"
    elif status == 429:
        cls = RetryableError
        message = "Autotask is throttling requests (429): trying again later."
        retry_after = response.retry_after()
    elif status == 500 and messages:
        # Autotask reports permissions, bad credentials and business rules as HTTP 500 with
        # {"errors": [...]}: the message, not the status, says what happened.
        cls, message = _classify_500(messages, operation, impersonating, may_have_landed)
    elif status >= 500:
        # A 500 without Autotask's envelope, or a gateway error: an outage. A create may
        # have been stored before the failure: look for it before posting again.
        cls = may_have_landed
        message = f"Autotask failed with HTTP {status}.{said}"
        if operation == "create":
            message += " The entry may have been stored: it is looked for before posting again."
    else:
        cls = PermanentError
        message = f"Autotask refused the request (HTTP {status}).{said}"
    return _error(cls, message.strip(), response, retry_after=retry_after)


def _classify_500(
    messages: list[str], operation: str, impersonating: bool, may_have_landed: type[PSAError]
) -> tuple[type[PSAError], str]:
    quoted = _quote(messages)
    if _has(messages, *PERMISSION_WORDS):
        # django-autotask: "The logged in Resource does not have the adequate permissions to
        # create this entity type." — for time entries, Proxy Time Entry or impersonation.
        if operation == "read":
            return ConfigurationError, (
                f"Autotask refused the request for lack of permissions: {quoted}. Check the "
                "API user's security level (Web Services API)."
            )
        if impersonating:
            # The resource's security level or licence does not allow impersonation: that
            # resource's entries fail, the connection carries on for everyone else.
            return UserError, (
                f"Autotask refused to log time while impersonating the resource: {quoted}. "
                f"{IMPERSONATION_FIX}"
            )
        return ConfigurationError, (
            f"Autotask refused to log time for another resource: {quoted}. {PROXY_FIX}"
        )
    if _has(messages, *CREDENTIAL_WORDS):
        # A wrong UserName or ApiIntegrationCode is a 500 ("IntegrationCode is invalid.").
        return ConfigurationError, (
            f"Autotask rejected the API credentials: {quoted}. Please {CREDENTIALS_FIX}."
        )
    if _has(messages, *ROLE_WORDS):
        # The role of this entry (its resource on its ticket): see ``post_time_entry``.
        return RoleRefused, f"Autotask refused the time entry's role: {quoted}. {ROLE_FIX}"
    if operation == "create" and _has(messages, *RESOURCE_WORDS):
        return UserError, (
            f"Autotask refused the resource: {quoted}. Check that the resource is active in "
            "Autotask, and the user mapping or the specified PSA user."
        )
    if _has(messages, "midnight"):
        # "You may need to enable the Allow time entries to span over midnight system
        # setting" (TimeEntries conditions): times are UTC, so local evenings cross midnight.
        return ConfigurationError, (
            f"Autotask refused an entry that crosses midnight (UTC): {quoted}. Enable System "
            "Settings → Timesheets → 'Allow time entries to span over midnight'."
        )
    if _has(messages, *THRESHOLD_WORDS):
        return RetryableError, f"Autotask refused the request for now: {quoted}."
    if _has(messages, *TRANSIENT_WORDS):
        message = f"Autotask failed with a transient error: {quoted}."
        if operation == "create":
            message += " The entry may have been stored: it is looked for before posting again."
        return may_have_landed, message
    # Validation and business rules (hoursWorked, dates, notes length, ...): this entry can
    # never succeed as it is; nothing was stored.
    return PermanentError, f"Autotask refused the request: {quoted}."


# --- the backend ------------------------------------------------------------------------------
class AutotaskBackend(PSABackend):
    vendor: ClassVar[str] = "autotask"
    label: ClassVar[str] = "Autotask"
    # Autotask allows 10,000 requests per rolling hour per database, shared by every
    # integration the MSP runs, and slows down past half of it: piadesk takes 15% by default.
    default_requests_per_hour: ClassVar[int] = 1500
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField(
            "api_username",
            "API user name",
            help_text="The API-only user's user name (an e-mail address), "
            "e.g. abc123@yourcompany.example.",
        ),
        ConfigField(
            "integration_code",
            "API integration code",
            secret=True,
            help_text="The API user's tracking identifier (ApiIntegrationCode).",
        ),
        ConfigField("secret", "Secret", secret=True, help_text="The API user's secret."),
        ConfigField(
            "discovery_url",
            "Zone discovery address",
            required=False,
            kind="url",
            help_text=f"Leave empty for Autotask's own ({DEFAULT_DISCOVERY_URL}); the local "
            "sandbox is http://127.0.0.1:<port>/sandbox/autotask/.",
        ),
        ConfigField(
            "impersonate",
            "Impersonate the resource",
            required=False,
            kind="bool",
            help_text="Post each entry as the resource it is for (ImpersonationResourceId) "
            "instead of relying on Proxy Time Entry.",
        ),
        ConfigField(
            "role_id",
            "Role ID",
            required=False,
            kind="int",
            help_text="Used when a resource has no default service desk role.",
        ),
    )

    destination_fields: ClassVar[tuple[str, ...]] = ("discovery_url", "api_username")

    def __init__(self, config: ConnectionConfig, *, http: Any, cache: Cache) -> None:
        super().__init__(config, http=http, cache=cache)
        self.username = str(config.get("api_username") or "").strip()
        self.discovery_url = normalise_base_url(
            str(config.get("discovery_url") or "") or DEFAULT_DISCOVERY_URL
        )
        self.impersonate = _to_bool(config.settings.get("impersonate", False))
        self.role_id = _positive_int(config.settings.get("role_id"))

    @classmethod
    def validate_config(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, str]
    ) -> dict[str, str]:
        errors = super().validate_config(settings, secrets)
        username = settings.get("api_username")
        if "api_username" not in errors and (
            not isinstance(username, str)
            or "@" not in username
            or any(c.isspace() for c in username.strip())
        ):
            errors["api_username"] = (
                "Enter the API user's user name, an e-mail address such as "
                "abc123@yourcompany.example."
            )
        discovery = settings.get("discovery_url")
        if discovery not in (None, "") and (
            message := address_error(
                discovery,
                what="the zone discovery address",
                example=f"e.g. {DEFAULT_DISCOVERY_URL}",
            )
        ):
            errors["discovery_url"] = message
        role = settings.get("role_id")
        if role not in (None, "") and _positive_int(role) is None:
            errors["role_id"] = "Enter the Autotask role id, a whole number above 0."
        return errors

    # -- zone ----------------------------------------------------------------------------------
    def _zone_cache_key(self) -> str:
        digest = hashlib.sha256(f"{self.discovery_url}|{self.username}".encode()).hexdigest()
        return f"psa:autotask:zone:{self.config.cache_key}:{digest[:24]}"

    def _zone(self, *, refresh: bool = False) -> tuple[dict[str, str], bool]:
        """``{"url", "name"}`` of the API user's zone, and whether it was just looked up."""
        key = self._zone_cache_key()
        if refresh:
            self.cache.delete(key)
        elif cached := self.cache.get(key):
            return cached, False
        response = self.http.request(
            "GET",
            f"{self.discovery_url}{API}zoneInformation",
            params={"user": self.username},
            headers={"Accept": "application/json"},
        )
        info = response.json()
        messages = vendor_errors(info)
        if response.status == 429 or (response.status >= 500 and not messages):
            message = f"Autotask did not answer the zone look-up ({response.status})."
            raise _error(RetryableError, message, response, retry_after=response.retry_after())
        url = info.get("url") if isinstance(info, Mapping) else None
        if response.status == 500:
            # An unknown (or blank) user name: {"errors":["Zone information could not be
            # determined"]}.
            message = (
                f"Autotask does not know the API user {self.username!r}: check the API user "
                f"name. Autotask said: {_quote(messages)}."
            )
        elif response.status != 200 or not isinstance(url, str):
            message = (
                f"{self.discovery_url} did not answer like Autotask's zone discovery (HTTP "
                f"{response.status}): check the zone discovery address."
            )
        elif problem := address_error(
            url.strip(), what="a zone address", example="e.g. " + ZONE_EXAMPLE
        ):
            # The credentials go to this address: never in clear, never with odd parts.
            message = f"Autotask gave an unusable zone address {url!r}: {problem}"
        else:
            zone = {
                "url": normalise_base_url(url),
                "name": str(info.get("zoneName") or "").strip(),
                # Where people use this database (e.g. https://ww5.autotask.net/): the ticket
                # links on entry pages. Only a clean address is kept; none is not an error.
                "web_url": _web_url(info.get("webUrl")),
            }
            self.cache.set(key, zone, ZONE_CACHE_SECONDS)
            return zone, True
        raise _error(ConfigurationError, message, response)

    def ticket_url(self, ticket_id: str) -> str | None:
        # Autotask's ExecuteCommand link to a ticket, on the zone's web address as the zone
        # look-up last gave it (read from the cache: no request here).
        zone = self.cache.get(self._zone_cache_key()) or {}
        web_url = zone.get("web_url")
        if not web_url:
            return None
        query = urlencode({"Code": "OpenTicketDetail", "TicketID": ticket_id})
        return f"{web_url}Autotask/AutotaskExtend/ExecuteCommand.aspx?{query}"

    # -- plumbing ------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {
            "ApiIntegrationCode": str(self.config.get("integration_code") or ""),
            "UserName": self.username,
            "Secret": str(self.config.get("secret") or ""),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str = "read",
        not_found: str = "",
        extra_headers: Mapping[str, str] | None = None,
        **request: Any,
    ) -> Response:
        """One API call to ``{zone}{path}`` (``request``: params, json_body), classified."""
        headers = {**self._headers(), **(extra_headers or {})}
        zone, fresh = self._zone()

        def send(zone: Mapping[str, str]) -> Response:
            return self.http.request(method, zone["url"] + path, headers=headers, **request)

        response = send(zone)
        if response.status == 401 and not fresh:
            # The database may have moved to another zone, whose old address no longer knows
            # the user: look the zone up again and retry once if it changed (the same URL would
            # give the same 401). A 401 stored nothing, so retrying a create is safe.
            new_zone, _ = self._zone(refresh=True)
            if new_zone["url"] != zone["url"]:
                response = send(new_zone)
        impersonating = "ImpersonationResourceId" in (extra_headers or {})
        return self._checked(response, operation, not_found, impersonating=impersonating)

    def _follow(self, url: str) -> Response:
        """A ``nextPageUrl``, fetched only if it is under the zone (credentials go with it)."""
        zone, _ = self._zone()
        base, target = urlsplit(zone["url"]), urlsplit(url)
        same_place = (target.scheme, target.netloc.lower()) == (
            base.scheme,
            base.netloc.lower(),
        ) and target.path.lower().startswith(base.path.lower())
        if not same_place:
            raise PermanentError(
                f"Autotask answered with a next page outside the zone ({url!r}); not followed."
            )
        response = self.http.request("GET", url, headers=self._headers())
        return self._checked(response, "read", "")

    @staticmethod
    def _checked(
        response: Response, operation: str, not_found: str, *, impersonating: bool = False
    ) -> Response:
        error = classify_response(response, operation=operation, impersonating=impersonating)
        if isinstance(error, NotFoundError) and not_found:
            error = NotFoundError(not_found, status=error.status, body=error.body)
        if error is not None:
            raise error
        return response

    @staticmethod
    def _json(response: Response, what: str) -> Mapping[str, Any]:
        body = response.json()
        if not isinstance(body, Mapping):
            message = f"Autotask answered {what} with something other than the expected JSON."
            raise _error(PermanentError, message, response)
        return body

    def _query(
        self, entity: str, filters: list[dict[str, Any]], *, pages: int
    ) -> Iterator[Mapping[str, Any]]:
        """Records of ``POST {entity}/query``, following ``nextPageUrl`` for up to ``pages``."""
        body = {"MaxRecords": MAX_RECORDS, "filter": filters}
        response = self._call("POST", f"{API}{entity}/query", json_body=body)
        for page in range(1, pages + 1):
            data = self._json(response, f"the {entity} query")
            items = data.get("items")
            if not isinstance(items, list):
                message = f"Autotask answered the {entity} query without an items list."
                raise _error(PermanentError, message, response)
            yield from (item for item in items if isinstance(item, Mapping))
            details = data.get("pageDetails")
            next_url = details.get("nextPageUrl") if isinstance(details, Mapping) else None
            if not items or not isinstance(next_url, str) or not next_url or page == pages:
                return
            response = self._follow(next_url)

    @staticmethod
    def _to_user(resource: Mapping[str, Any], **extra: Any) -> PSAUser:
        ref = str(resource.get("id"))
        name = f"{resource.get('firstName') or ''} {resource.get('lastName') or ''}".strip()
        return PSAUser(
            ref=ref, name=name or ref, email=str(resource.get("email") or ""), extra=extra
        )

    def _is_api_user(self, resource: Mapping[str, Any]) -> bool:
        """The API user's own resource (its user name is its e-mail): it cannot log time on
        tickets (no service desk role, an API-only licence), so pickers leave it out."""
        name = self.username.casefold()
        return bool(name) and any(
            str(resource.get(f) or "").strip().casefold() == name
            for f in ("email", "email2", "email3", "userName")
        )

    def _default_role_id(self, resource_id: int) -> int | None:
        filters = [
            {"op": "eq", "field": "resourceID", "value": resource_id},
            {"op": "eq", "field": "isDefault", "value": True},
            {"op": "eq", "field": "isActive", "value": True},
        ]
        for row in self._query("ResourceServiceDeskRoles", filters, pages=1):
            if str(row.get("resourceID")) == str(resource_id):
                if (role := _positive_int(row.get("roleID"))) is not None:
                    return role
        return None

    # -- reads ---------------------------------------------------------------------------------
    def check_connection(self) -> str:
        """What a test can know: the credentials work (``ThresholdInformation``), and whether
        the API user may create time entries (``TimeEntries/entityInformation``). Whether it
        may create them for *other* resources (Proxy Time Entry, a system setting) or
        impersonate them (security levels) no read tells: the message says so."""
        info = self._json(self._call("GET", f"{API}ThresholdInformation"), "ThresholdInformation")
        zone, _ = self._zone()
        used = info.get("currentTimeframeRequestCount")
        limit = info.get("externalRequestThreshold")
        minutes = info.get("requestThresholdTimeframe")
        connected = f"Connected to Autotask (zone {zone['name'] or zone['url']})"
        if used is not None and limit is not None:
            period = "this hour" if minutes in (None, 60) else f"in the last {minutes} minutes"
            # The limit is per database and shared by every integration (REST_Thresholds_Limits).
            connected += f"; {used} of {limit} requests used {period}"
        access = self._time_entry_access(connected)
        others = IMPERSONATION_CHECK if self.impersonate else PROXY_CHECK
        return f"{connected}. {access} {others}"

    def _time_entry_access(self, connected: str) -> str:
        """What ``TimeEntries/entityInformation`` says of the API user's right to create time
        entries (REST_EntityInformationCall: ``canCreate``, and ``userAccessForCreate`` 0 None,
        1 All, 2 Restricted; clients also see the names). ConfigurationError when it may not."""
        try:
            response = self._call("GET", f"{API}TimeEntries/entityInformation")
            info = self._json(response, "TimeEntries/entityInformation").get("info")
        except (NotFoundError, PermanentError):
            info = None
        access = _create_access(info)
        if access is None:
            return (
                "Autotask did not say whether the API user may create time entries "
                "(TimeEntries/entityInformation)."
            )
        if access == "none":
            raise ConfigurationError(
                f"{connected}, but its API user may not create time entries (Autotask's "
                f"TimeEntries/entityInformation: {_access_words(info)}). {ENTRY_ACCESS_FIX}"
            )
        if access == "restricted":
            return (
                "The API user may create time entries only as its security level allows "
                "(Autotask: Restricted)."
            )
        return "The API user may create time entries."

    def find_user_by_email(self, email: str) -> PSAUser | None:
        email = email.strip()
        if not email:
            return None
        fields = ("email", "email2", "email3")
        filters: list[dict[str, Any]] = [
            {"op": "or", "items": [{"op": "eq", "field": f, "value": email} for f in fields]},
            {"op": "eq", "field": "isActive", "value": True},
        ]
        resources = list(self._query("Resources", filters, pages=1))
        # The server may match loosely (collation, trimming): require an exact match here,
        # preferring the main e-mail over the additional ones.
        for field in fields:
            for resource in resources:
                if (
                    str(resource.get(field) or "").casefold() == email.casefold()
                    and resource.get("isActive") is not False
                    and ID_RE.fullmatch(str(resource.get("id")))
                ):
                    role = self._default_role_id(int(resource["id"]))
                    return self._to_user(resource, default_role_id=role)
        return None

    def get_user(self, ref: str) -> PSAUser:
        not_found = f"Autotask has no resource {ref!r}"
        if not ID_RE.fullmatch(str(ref).strip()):
            # Resource ids are numbers: no resource has this ref. NotFoundError, as the
            # interface promises (and as for HaloPSA), so that a picker or a form can say "no
            # such user" instead of treating it as a broken connection.
            raise NotFoundError(f"{not_found} (resource ids are numbers).")
        resource_id = int(str(ref).strip())
        response = self._call("GET", f"{API}Resources/{resource_id}", not_found=not_found)
        item = self._json(response, f"resource {ref}").get("item")
        if not isinstance(item, Mapping):
            raise NotFoundError(not_found)
        return self._to_user(item)

    def list_users(self, search: str = "") -> list[PSAUser]:
        filters: list[dict[str, Any]] = [{"op": "eq", "field": "isActive", "value": True}]
        if term := search.strip():
            fields = ("firstName", "lastName", "email")
            filters.append(
                {
                    "op": "or",
                    "items": [{"op": "contains", "field": f, "value": term} for f in fields],
                }
            )
        records = self._query("Resources", filters, pages=MAX_USERS // MAX_RECORDS)
        users = [
            self._to_user(r)
            for r in records
            if ID_RE.fullmatch(str(r.get("id"))) and not self._is_api_user(r)
        ]
        users = users[:MAX_USERS]
        return sorted(users, key=lambda u: (u.name.casefold(), u.ref))

    def get_ticket(self, ticket_id: str) -> Ticket:
        number = _valid_id(ticket_id, "ticket")
        not_found = f"Autotask has no ticket {number}"
        response = self._call("GET", f"{API}Tickets/{number}", not_found=not_found)
        item = self._json(response, f"ticket {number}").get("item")
        if not isinstance(item, Mapping):
            raise NotFoundError(not_found)  # {"item": null}: no such ticket (or not visible)
        role_id = _positive_int(item.get("assignedResourceRoleID"))
        assignee = None
        if (resource := _positive_int(item.get("assignedResourceID"))) is not None:
            assignee = PSAUser(ref=str(resource), extra={"role_id": role_id})
        return Ticket(
            id=str(item.get("id") or number), assignee=assignee, extra={"assigned_role_id": role_id}
        )

    # -- the write -----------------------------------------------------------------------------
    def role_for(self, entry: EntryToPost) -> int:
        """The roleID to send for ``entry`` (see the module docstring).

        The ticket's assigned role whenever the resource *is* the ticket's assigned resource
        (Autotask requires it unless the instance lets time entries change the role), else the
        resource's default service desk role, else the connection's Role ID.
        """
        resource_id = _resource_id(entry.user)
        ticket = entry.ticket
        if ticket is not None and str(ticket.id).strip() == str(entry.ticket_id).strip():
            role = _assignee_role(ticket, resource_id)
            if role is not None:
                return role
        if "default_role_id" in entry.user.extra:
            role = _positive_int(entry.user.extra["default_role_id"])
        else:
            role = self._default_role_id(resource_id)
        role = role or self.role_id
        if role is None:
            # One resource's set-up, not the connection's: only this user's entries fail.
            raise UserError(
                f"Autotask resource {resource_id} has no default service desk role: set one in "
                "Autotask or set Role ID on the connection."
            )
        return role

    def post_time_entry(self, entry: EntryToPost) -> PostResult:
        # Refusals that need no request come first (a role look-up may need one).
        _valid_id(entry.ticket_id, "ticket")
        hours_worked(entry)
        role = self.role_for(entry)
        try:
            return self._create(entry, role)
        except RoleRefused as refused:
            # A stricter instance wants the ticket's assigned role (e.g. the resource is the
            # ticket's assigned resource and time entries may not change the role): a refusal
            # stored nothing, so the ticket's role is tried once.
            ticket_role = self._ticket_role(entry)
            if ticket_role is None or ticket_role == role:
                raise _role_advice(refused, entry, role, ticket_role) from None
            try:
                return self._create(entry, ticket_role)
            except RoleRefused as again:
                raise _role_advice(again, entry, role, ticket_role) from None

    def _ticket_role(self, entry: EntryToPost) -> int | None:
        ticket = entry.ticket
        if ticket is None or str(ticket.id).strip() != str(entry.ticket_id).strip():
            ticket = self.get_ticket(entry.ticket_id)
        return _positive_int(ticket.extra.get("assigned_role_id"))

    def _create(self, entry: EntryToPost, role: int) -> PostResult:
        payload = build_time_entry_payload(entry, role)
        headers = (
            {"ImpersonationResourceId": str(payload["resourceID"])} if self.impersonate else {}
        )
        response = self._call(
            "POST",
            f"{API}TimeEntries",
            operation="create",
            json_body=payload,
            extra_headers=headers,
        )
        body = response.json()
        item_id = body.get("itemId") if isinstance(body, Mapping) else None
        if item_id is None:
            # A success status means it was stored, but we cannot tell which entry it is.
            message = "Autotask accepted the time entry but did not return its itemId."
            raise _error(UnknownOutcomeError, message, response)
        return PostResult(psa_entry_id=str(item_id), start=entry.start, end=entry.end)

    def find_entry(self, ticket_id: str, reference: str) -> FoundEntry | None:
        number = _valid_id(ticket_id, "ticket")
        if not reference:
            return None  # an empty reference would "match" any entry
        filters: list[dict[str, Any]] = [
            {"op": "eq", "field": "ticketID", "value": number},
            {
                "op": "or",
                "items": [
                    {"op": "contains", "field": "summaryNotes", "value": reference},
                    {"op": "eq", "field": "internalNotes", "value": reference},
                ],
            },
        ]
        for record in self._query("TimeEntries", filters, pages=MAX_ENTRY_PAGES):
            # Confirmed here too: the server's "contains" may be looser (collation).
            notes = str(record.get("summaryNotes") or "")
            if record.get("id") is not None and (
                reference in notes or record.get("internalNotes") == reference
            ):
                return FoundEntry(
                    str(record["id"]),
                    start=parse_utc(record.get("startDateTime")),
                    end=parse_utc(record.get("endDateTime")),
                )
        return None
