"""The small interface every PSA backend implements, and the types that cross it.

A backend receives plain frozen dataclasses (the connection's config, the entry to post) and
never ORM objects; it returns results or raises exactly one of the errors below. Errors are
classified once, at the vendor boundary (each backend's ``classify_response``), so the rest of
piadesk decides what to do from the class alone:

=====================  =========================================================================
error                  what piadesk does
=====================  =========================================================================
RetryableError         try again later (timeouts before sending, 429, 502-504, "timeout" 500s)
PermanentError         this entry can never succeed as it is (validation): fail, tell staff
ConfigurationError     credentials, permissions, proxy time entry, missing mapping: the
                       connection needs a person; hold its entries and tell the staff
UnknownOutcomeError    the request may have landed (timeout after sending, dropped connection,
                       5xx after send): look on the ticket for our reference before re-posting
NotFoundError          the thing looked up does not exist (ticket, member)
UserError              the PSA refuses the user the entry is for (inactive, unknown, not a
                       real user): fail this entry for a person to fix the mapping; the
                       connection and other users' entries carry on
=====================  =========================================================================

Adding a vendor is one module with a ``PSABackend`` subclass plus one line in ``registry.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from psa.http import PSASession  # psa.http imports this module

from django.db.models import TextChoices


# --- errors ---------------------------------------------------------------------------------
class ErrorClass(TextChoices):
    """The closed set of error classes: each ``PSAError``'s ``kind``, stored on entries and
    attempts. Labels say whose problem it is (``ERROR_SCOPE``)."""

    RETRYABLE = "retryable", "Retryable (PSA busy or unreachable)"
    THROTTLED = "throttled", "Throttled (request budget or the PSA's Retry-After)"
    UNKNOWN_OUTCOME = "unknown_outcome", "Unknown outcome (looked up before posting again)"
    PERMANENT = "permanent", "This entry (the PSA refused it as it is)"
    NOT_FOUND = "not_found", "This entry (ticket or record not found)"
    UNRESOLVED = "unresolved", "One user (no usable PSA user)"
    CONFIGURATION = "configuration", "The connection (credentials, permissions, settings)"
    ERROR = "error", "Other error"


class ErrorScope(TextChoices):
    """Whose problem an error is: who must act, and how far it stops delivery."""

    PASSING = "passing", "Nobody: tried again later"
    ENTRY = "entry", "This entry: fails alone"
    USER = "user", "One user: fails that user's entries"
    CONNECTION = "connection", "The connection: paused, entries held"


ERROR_SCOPE: dict[str, ErrorScope] = {
    ErrorClass.RETRYABLE: ErrorScope.PASSING,
    ErrorClass.THROTTLED: ErrorScope.PASSING,
    ErrorClass.UNKNOWN_OUTCOME: ErrorScope.PASSING,
    ErrorClass.PERMANENT: ErrorScope.ENTRY,
    ErrorClass.NOT_FOUND: ErrorScope.ENTRY,
    ErrorClass.ERROR: ErrorScope.ENTRY,
    ErrorClass.UNRESOLVED: ErrorScope.USER,
    ErrorClass.CONFIGURATION: ErrorScope.CONNECTION,
}


class PSAError(Exception):
    """Base of the closed set of errors a backend may raise.

    ``message`` is written for MSP staff: what the PSA said and, where we know it, what to do.
    """

    kind: ClassVar[str] = ErrorClass.ERROR

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body[:2000]
        self.retry_after = retry_after

    @property
    def scope(self) -> ErrorScope:
        """Whose problem this is (see ``ERROR_SCOPE``)."""
        return ERROR_SCOPE[self.kind]


class RetryableError(PSAError):
    kind = ErrorClass.RETRYABLE


class PermanentError(PSAError):
    kind = ErrorClass.PERMANENT


class ConfigurationError(PSAError):
    kind = ErrorClass.CONFIGURATION


class UnknownOutcomeError(PSAError):
    kind = ErrorClass.UNKNOWN_OUTCOME


class NotFoundError(PSAError):
    kind = ErrorClass.NOT_FOUND


class UserError(PSAError):
    """No usable PSA user for this entry. Per entry, not per connection: pausing a whole
    tenant because one engineer's e-mail or mapping is wrong would stop everyone's time."""

    kind = ErrorClass.UNRESOLVED


# --- types crossing the interface -----------------------------------------------------------
@dataclass(frozen=True)
class ConfigField:
    """One field of a vendor's connection form."""

    name: str
    label: str
    secret: bool = False
    required: bool = True
    help_text: str = ""
    kind: str = "text"  # "text" | "url" | "bool" | "int"


@dataclass(frozen=True)
class ConnectionConfig:
    """A tenant's PSA connection as a backend sees it: plain values, secrets decrypted."""

    vendor: str
    settings: Mapping[str, Any]
    secrets: Mapping[str, str]
    # A stable key for per-connection caches (codebase, zone, token): the connection's id.
    cache_key: str = ""

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.secrets:
            return self.secrets[name]
        return self.settings.get(name, default)


@dataclass(frozen=True)
class PSAUser:
    """A member (ConnectWise), resource (Autotask) or agent (HaloPSA).

    ``ref`` is what the vendor's time-entry payload names the user by: the member identifier
    for ConnectWise, the numeric resource/agent id (as a string) for Autotask and HaloPSA.
    ``extra`` carries vendor facts needed when posting (e.g. Autotask's default role id).
    """

    ref: str
    name: str = ""
    email: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ticket:
    id: str
    assignee: PSAUser | None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EntryToPost:
    ticket_id: str
    user: PSAUser
    start: dt.datetime  # aware, UTC
    end: dt.datetime  # aware, UTC
    notes: str
    reference: str  # stable reference to the run; also present inside ``notes``
    # How the user was chosen ("starter" | "assignee" | "specified"): some vendors pick a
    # role from it (Autotask uses the ticket's assigned role for the assignee).
    log_as: str = "starter"
    ticket: Ticket | None = None

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def hours(self) -> float:
        return round((self.end - self.start).total_seconds() / 3600, 4)


@dataclass(frozen=True)
class Exchange:
    """One HTTP request/response, with secrets removed: kept for the auditors' history.

    ``psa.http.PSASession`` records one per request in ``session.exchanges``.
    """

    method: str
    url: str
    status: int | None
    duration_ms: int
    request_excerpt: str = ""
    response_excerpt: str = ""


@dataclass(frozen=True)
class PostResult:
    psa_entry_id: str
    start: dt.datetime
    end: dt.datetime
    adopted: bool = False  # True when an existing entry with our reference was found instead


@dataclass(frozen=True)
class FoundEntry:
    """An entry already on the ticket carrying the run's reference, as the PSA holds it.

    ``start``/``end`` are read from the PSA's record (None when it did not say): after an
    unknown outcome piadesk records the window the PSA holds, which may differ from the
    entry's own (ConnectWise's window is moved back when it would end in the future).
    """

    psa_entry_id: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def parse_utc(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from a PSA's ISO-8601 text ("Z", an offset, or none = UTC)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 parses up to 6 fractional digits; .NET writes up to 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def replace(obj: Any, **changes: Any) -> Any:
    return dataclasses.replace(obj, **changes)


# --- the backend interface ------------------------------------------------------------------
class Cache(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any, timeout: float | None = None) -> None: ...
    def delete(self, key: str) -> Any: ...


class PSABackend:
    """Base class of the vendor backends. One instance serves one connection.

    Subclasses set ``vendor``, ``label`` and ``config_fields`` and implement the methods
    below. ``http`` is a ``psa.http.PSASession``; ``cache`` a Django-style cache.
    """

    vendor: ClassVar[str]
    label: ClassVar[str]
    config_fields: ClassVar[tuple[ConfigField, ...]]
    # The config fields that decide where the secrets are sent (addresses, and who the secrets
    # are for at that address). Changing one needs every secret typed again in the same save:
    # a stored secret is only ever sent to the destination it was typed for.
    destination_fields: ClassVar[tuple[str, ...]] = ()
    # Seconds a new entry may take to show up on reads (HaloPSA lags): after an unknown
    # outcome, the look-up for our reference waits at least this long.
    read_after_write_seconds: ClassVar[int] = 0
    # piadesk's default request budget per connection and hour (staff can change it).
    default_requests_per_hour: ClassVar[int] = 3600

    def __init__(self, config: ConnectionConfig, *, http: Any, cache: Cache) -> None:
        self.config = config
        self.http: PSASession = http
        self.cache = cache

    # -- configuration ---------------------------------------------------------------------
    @classmethod
    def validate_config(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, str]
    ) -> dict[str, str]:
        """Return ``{field: message}`` for every invalid value (empty when valid)."""
        errors: dict[str, str] = {}
        for f in cls.config_fields:
            value = (secrets if f.secret else settings).get(f.name)
            if f.required and (value is None or value == ""):
                errors[f.name] = f"{f.label} is required."
        return errors

    # -- reads ------------------------------------------------------------------------------
    def check_connection(self) -> str:
        """Make a real authenticated read; return a short description of what was seen."""
        raise NotImplementedError

    def find_user_by_email(self, email: str) -> PSAUser | None:
        """The active user whose e-mail matches exactly (case-insensitive), or None."""
        raise NotImplementedError

    def get_user(self, ref: str) -> PSAUser:
        """The user named by ``ref``; NotFoundError when there is none."""
        raise NotImplementedError

    def get_ticket(self, ticket_id: str) -> Ticket:
        """The ticket with its assignee (None when unassigned); NotFoundError when unknown."""
        raise NotImplementedError

    def list_users(self, search: str = "") -> list[PSAUser]:
        """Active users, optionally filtered by a search string (for pickers)."""
        raise NotImplementedError

    def ticket_url(self, ticket_id: str) -> str | None:
        """Where a person opens the ticket in the vendor's web app (not the API), or None
        when it cannot be told. Never makes a request: it is called after a post, to record
        the link shown on the entry's page."""
        return None

    # -- the write ---------------------------------------------------------------------------
    def adjust_window(
        self, start: dt.datetime, end: dt.datetime, now: dt.datetime
    ) -> tuple[dt.datetime, dt.datetime]:
        """Fit the window to the vendor's rules (ConnectWise refuses future time)."""
        return start, end

    def post_time_entry(self, entry: EntryToPost) -> PostResult:
        raise NotImplementedError

    def find_entry(self, ticket_id: str, reference: str) -> FoundEntry | None:
        """The existing entry on the ticket whose notes carry ``reference``, with the window
        the PSA holds for it."""
        raise NotImplementedError

    def find_entry_by_reference(self, ticket_id: str, reference: str) -> str | None:
        """The id of an existing entry on the ticket whose notes carry ``reference``."""
        found = self.find_entry(ticket_id, reference)
        return found.psa_entry_id if found is not None else None
