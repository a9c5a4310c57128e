"""HaloPSA REST API stand-in, mounted at ``/sandbox/halopsa/``.

Vendor facts come from ``docs/vendors.md``, the ``Actions`` schema and paths of the
Halo OpenAPI v2 document, and the established clients cited in ``psa/halopsa.py``; where the
sandbox had to choose (undocumented behaviour) the choice is commented here.

Connecting piadesk to it
    Seed an account (``psa.sandbox.seed.seed_halopsa()``: tenant ``demo``, client id and
    secret ``DEMO_HALO_CLIENT_ID`` / ``DEMO_HALO_CLIENT_SECRET``) and give the piadesk
    connection the authorisation server ``http://127.0.0.1:<port>/sandbox/halopsa/auth``, the
    resource server ``http://127.0.0.1:<port>/sandbox/halopsa/api`` and tenant ``demo``.

How the vendor-neutral models are used
    ``SandboxAccount``: ``company_id`` is the tenant name, ``public_key`` the client id,
    ``private_key`` the client secret; ``options`` e.g. ``{"read_lag_seconds": 3,
    "api_agent_id": 5, "token_lifetime_seconds": 3600}``. ``SandboxMember``: ``member_id`` is
    the agent id (agent 1 is the "Unassigned" placeholder), ``inactive`` is ``isdisabled``.
    ``SandboxTicket``: ``owner`` is the assigned agent (none: ``agent_id`` 1).
    ``SandboxTimeEntry``: one per action; ``payload`` is the action as received plus the
    ``id`` the sandbox gave it, a per-ticket counter (Halo's action ids are unique per ticket
    only; 1 is the ticket's opening action, so the first one posted is 2).

What it enforces
    - ``POST auth/token`` (form): ``grant_type=client_credentials`` (else 400
      ``{"error": "unsupported_grant_type"}``), a non-empty ``scope`` (else 400
      ``{"error": "invalid_scope"}``), and a ``client_id``/``client_secret`` matching an
      account, and its tenant when ``?tenant=`` is given (else 401 ``{"error":
      "invalid_client"}``). Answers ``{"access_token", "token_type": "Bearer", "expires_in",
      "scope"}``; tokens are signed (``django.core.signing``) and carry the account, the
      expiry and a fingerprint of the secret, so a rotated secret revokes them.
    - Every ``api/`` call: ``Authorization: Bearer <token>``, valid and unexpired, else 401
      ``{"Message": "Authorization has been denied for this request."}`` (ASP.NET's words).
    - ``GET api/Agent``: a bare array; ``search`` is fuzzy (the whole term, or any word of
      three letters or more in it, found in the name or e-mail: an e-mail search returns the
      whole domain); ``includedisabled``/``includeenabled``/``includeunassigned``; ``count``;
      ``pageinate``/``page_size``/``page_no`` where **a page past the last one returns the
      last page again**. ``GET api/Agent/me`` (the application's agent,
      ``options["api_agent_id"]``), ``GET api/Agent/{id}`` (404 bare JSON string if unknown).
    - ``GET api/Outcome``: a bare array of outcomes (``options["outcomes"]`` or three
      defaults, "Automation" among them, hidden unless ``showhidden=true``). Outcome names
      are not checked when an action is posted: what Halo does with an unknown one is not
      documented.
    - ``GET api/Tickets/{id}``: ``agent_id`` (1 when unassigned), ``agent_name``, datetimes
      without a zone and ``1900-01-01T00:00:00`` for empty ones; 404 ``{"message"}`` if unknown.
    - ``POST api/Actions``: the body **must be a JSON array** of action objects (an object is
      400 ``{"ClassName", "Message"}``); each action needs an outcome (``outcome`` or
      ``outcome_id``; else 400 with a bare JSON string), an existing ``ticket_id``, a
      ``who_agentid`` naming an active agent other than 1, a ``timetaken`` >= 0 (hours) and
      parseable dates; no ``id`` (that would be an update). All or nothing. Answers 200 with
      the created action (a list when several were posted).
    - ``GET api/Actions?ticket_id=``: ``{"record_count", "actions"}``; **reads lag**: actions
      received less than ``options["read_lag_seconds"]`` (default 3) ago are not listed yet.
    - Unknown paths are 404.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, re_path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from psa.sandbox.models import (
    SandboxAccount,
    SandboxMember,
    SandboxTicket,
    SandboxTimeEntry,
    Vendor,
)
from psa.sandbox.views import ticket_page

VENDOR = Vendor.HALOPSA
TOKEN_SALT = "psa.sandbox.halopsa.token"
DEFAULT_TOKEN_LIFETIME = 3600
DEFAULT_READ_LAG_SECONDS = 3
DEFAULT_PAGE_SIZE = 50
UNASSIGNED_AGENT_ID = 1
DENIED = {"Message": "Authorization has been denied for this request."}
DEFAULT_OUTCOMES = [
    {"id": 1, "outcome": "Note", "buttonname": "Add Note", "hidden": False},
    {"id": 12, "outcome": "Automation", "buttonname": "Automation", "hidden": True},
    {"id": 13, "outcome": "Remote Work", "buttonname": "Log Remote Work", "hidden": False},
]


class ApiError(Exception):
    """An error answer in one of Halo's shapes; ``body`` is any JSON value."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body

    def response(self) -> JsonResponse:
        return JsonResponse(self.body, status=self.status, safe=False)


def _exception(message: str) -> ApiError:
    """400 in the .NET exception shape."""
    return ApiError(400, {"ClassName": "HaloValidationException", "Message": message})


# --- time formats -----------------------------------------------------------------------------
def _halo_time(value: dt.datetime | None) -> str:
    """Halo's datetime format: UTC without a zone suffix; "1900-01-01T00:00:00" for none."""
    if value is None:
        return "1900-01-01T00:00:00"
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _parse_time(raw: Any) -> dt.datetime | None:
    """Halo accepts times with or without a zone (without: UTC). None when unparseable."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _option(account: SandboxAccount, name: str, default: float) -> float:
    try:
        return float((account.options or {}).get(name, default))
    except (TypeError, ValueError):
        return default


# --- tokens -----------------------------------------------------------------------------------
def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _issue_token(account: SandboxAccount, lifetime: int) -> str:
    claims = {
        "a": account.pk,
        "exp": int(time.time()) + lifetime,
        "k": _fingerprint(account.private_key),
    }
    return signing.dumps(claims, salt=TOKEN_SALT)


def _account_for_token(request: HttpRequest) -> SandboxAccount:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, DENIED)
    try:
        claims = signing.loads(token.strip(), salt=TOKEN_SALT)
    except signing.BadSignature:
        raise ApiError(401, DENIED) from None
    if not isinstance(claims, dict) or float(claims.get("exp", 0)) <= time.time():
        raise ApiError(401, DENIED)
    account = SandboxAccount.objects.filter(vendor=VENDOR, pk=claims.get("a", 0)).first()
    if account is None or not hmac.compare_digest(
        str(claims.get("k", "")), _fingerprint(account.private_key)
    ):
        raise ApiError(401, DENIED)  # the account is gone or its secret was rotated
    return account


@csrf_exempt
def token(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"error": "invalid_request"}, status=405)
    form = request.POST
    if form.get("grant_type") != "client_credentials":
        return JsonResponse({"error": "unsupported_grant_type"}, status=400)
    scope = form.get("scope", "").strip()
    if not scope:
        return JsonResponse({"error": "invalid_scope"}, status=400)
    accounts = SandboxAccount.objects.filter(vendor=VENDOR, public_key=form.get("client_id", ""))
    if tenant := request.GET.get("tenant", "").strip():
        accounts = accounts.filter(company_id=tenant)
    account = accounts.order_by("pk").first()
    if account is None or not hmac.compare_digest(
        form.get("client_secret", "").encode(), account.private_key.encode()
    ):
        # The OAuth 2 answer for a wrong client id, secret or (hosted) tenant.
        return JsonResponse({"error": "invalid_client"}, status=401)
    lifetime = int(_option(account, "token_lifetime_seconds", DEFAULT_TOKEN_LIFETIME))
    return JsonResponse(
        {
            "access_token": _issue_token(account, lifetime),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        }
    )


ApiView = Callable[..., HttpResponse]


def api_view(*methods: str) -> Callable[[ApiView], ApiView]:
    """Bearer auth, the method check, and ``ApiError`` turned into its JSON answer."""

    def decorate(view: ApiView) -> ApiView:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                account = _account_for_token(request)
                if request.method not in methods:
                    raise ApiError(
                        405,
                        {
                            "Message": f"The requested resource does not support "
                            f"http method '{request.method}'."
                        },
                    )
                return view(request, account, **kwargs)
            except ApiError as exc:
                return exc.response()

        return wrapper

    return decorate


def _flag(request: HttpRequest, name: str, default: bool) -> bool:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("true", "1", "yes")


def _int_param(request: HttpRequest, name: str, default: int | None) -> int | None:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ApiError(400, f"The value '{raw}' is not valid for {name}.")
    return value


# --- agents -----------------------------------------------------------------------------------
def _agent_json(member: SandboxMember) -> dict[str, Any]:
    return {
        "id": member.member_id,
        "name": member.name,
        "firstname": member.first_name,
        "surname": member.last_name,
        "email": member.primary_email or member.office_email,
        "initials": "".join(p[:1] for p in (member.first_name, member.last_name)).upper(),
        "isdisabled": member.inactive,
        "use": "agent",
    }


def _fuzzy_match(member: SandboxMember, search: str) -> bool:
    """Halo's search is "like" the term over name, e-mail and phone; the sandbox is looser
    still (any word of the term matches), so clients must match e-mails exactly."""
    haystack = " ".join(
        (member.name, member.identifier, member.primary_email, member.office_email)
    ).lower()
    term = search.strip().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", term) if len(w) >= 3]
    return term in haystack or any(w in haystack for w in words)


@api_view("GET")
def agents(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    members = list(account.members.order_by("member_id"))
    if not _flag(request, "includeunassigned", False):
        members = [m for m in members if m.member_id != UNASSIGNED_AGENT_ID]
    if not _flag(request, "includedisabled", False):
        members = [m for m in members if not m.inactive]
    if not _flag(request, "includeenabled", True):
        members = [m for m in members if m.inactive]
    if search := request.GET.get("search", "").strip():
        members = [m for m in members if _fuzzy_match(m, search)]
    rows = [_agent_json(m) for m in members]
    if _flag(request, "pageinate", False):
        size = _int_param(request, "page_size", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
        page = _int_param(request, "page_no", 1) or 1
        # Halo's quirk: a page past the last one is answered with the last page again.
        last_page = max(1, math.ceil(len(rows) / size))
        page = min(page, last_page)
        rows = rows[(page - 1) * size : page * size]
    elif count := _int_param(request, "count", None):
        rows = rows[:count]
    return JsonResponse(rows, safe=False)  # GET Agent answers a bare array


@api_view("GET")
def agent_me(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    agent_id = int(_option(account, "api_agent_id", 0))
    member = account.members.filter(member_id=agent_id).first()
    if member is None:
        raise ApiError(404, "The API application has no agent to log in as.")
    return JsonResponse(_agent_json(member))


@api_view("GET")
def agent(request: HttpRequest, account: SandboxAccount, agent_id: int) -> JsonResponse:
    member = account.members.filter(member_id=agent_id).first()
    if member is None:
        raise ApiError(404, f"Agent {agent_id} not found.")  # a bare JSON string
    return JsonResponse(_agent_json(member))


# --- outcomes ---------------------------------------------------------------------------------
@api_view("GET")
def outcomes(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    """A bare array of ``{"id", "outcome", ...}``; ``options["outcomes"]`` replaces the
    defaults. Hidden ones are listed only with ``showhidden=true``."""
    rows = (account.options or {}).get("outcomes") or DEFAULT_OUTCOMES
    if not _flag(request, "showhidden", False):
        rows = [r for r in rows if not r.get("hidden")]
    return JsonResponse(rows, safe=False)


# --- tickets ----------------------------------------------------------------------------------
@api_view("GET")
def ticket(request: HttpRequest, account: SandboxAccount, ticket_id: int) -> JsonResponse:
    found = account.tickets.select_related("owner").filter(ticket_id=ticket_id).first()
    if found is None:
        raise ApiError(404, {"message": f"Ticket {ticket_id} not found."})
    data: dict[str, Any] = {
        "id": found.ticket_id,
        "summary": found.summary,
        "agent_id": found.owner.member_id if found.owner else UNASSIGNED_AGENT_ID,
    }
    if found.owner is not None:
        data["agent_name"] = found.owner.name
    data.update(
        # Halo's datetimes have no zone suffix (UTC); 1900-01-01 is its "no date".
        dateoccurred=_halo_time(_parse_time(found.extra.get("dateoccurred"))),
        deadlinedate=_halo_time(None),
    )
    return JsonResponse(data)


# --- actions ----------------------------------------------------------------------------------
def _action_json(entry: SandboxTimeEntry) -> dict[str, Any]:
    payload = entry.payload or {}
    return {
        "id": payload.get("id"),
        "ticket_id": entry.ticket.ticket_id,
        "outcome": payload.get("outcome") or "",
        "outcome_id": payload.get("outcome_id") or 0,
        "who": entry.member.name,
        "who_agentid": entry.member.member_id,
        "note": entry.notes,
        "datetime": _halo_time(entry.received_at),
        "actiondatecreated": _halo_time(entry.received_at),
        "actionarrivaldate": _halo_time(entry.time_start),
        "actioncompletiondate": _halo_time(entry.time_end),
        "timetaken": payload.get("timetaken") or 0,
        "hiddenfromuser": bool(payload.get("hiddenfromuser")),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _validate_action(account: SandboxAccount, action: Any) -> dict[str, Any]:
    """The model fields for one action, or an ``ApiError`` in one of Halo's shapes."""
    if not isinstance(action, dict):
        raise _exception("Each action must be a JSON object.")
    if action.get("id") not in (None, 0):
        # In Halo a POST with an id updates that action; the sandbox only creates.
        raise _exception("The sandbox does not update actions: leave id out.")
    outcome, outcome_id = action.get("outcome"), action.get("outcome_id")
    has_name = isinstance(outcome, str) and outcome.strip()
    has_id = isinstance(outcome_id, int) and not isinstance(outcome_id, bool) and outcome_id > 0
    if not (has_name or has_id):
        # Established clients always send one; the sandbox treats it as required.
        raise ApiError(400, "Please choose an outcome for the action (outcome or outcome_id).")

    ticket_id = action.get("ticket_id")
    found = None
    if isinstance(ticket_id, int) and not isinstance(ticket_id, bool):
        found = account.tickets.filter(ticket_id=ticket_id).first()
    if found is None:
        raise _exception(f"Ticket {ticket_id!r} does not exist.")

    agent_id = action.get("who_agentid")
    member = None
    if isinstance(agent_id, int) and not isinstance(agent_id, bool):
        if agent_id == UNASSIGNED_AGENT_ID:
            raise ApiError(400, "who_agentid: agent 1 (Unassigned) cannot record actions.")
        member = account.members.filter(member_id=agent_id, inactive=False).first()
    if member is None:
        raise ApiError(400, f"who_agentid: agent {agent_id!r} does not exist or is disabled.")

    hours = 0.0 if action.get("timetaken") is None else _number(action.get("timetaken"))
    if hours is None or hours < 0:
        raise _exception("timetaken must be a number of hours, 0 or more.")
    start = end = None
    for field in ("actionarrivaldate", "actioncompletiondate"):
        if action.get(field) in (None, ""):
            continue
        if (parsed := _parse_time(action[field])) is None:
            raise _exception(f"{field} is not a valid date: {action[field]!r}.")
        if field == "actionarrivaldate":
            start = parsed
        else:
            end = parsed
    if start is not None and end is not None and end < start:
        raise _exception("actioncompletiondate must not be before actionarrivaldate.")
    note = action.get("note") or ""
    if not isinstance(note, str):
        raise _exception("note must be text.")
    start = start or (end - dt.timedelta(hours=hours) if end else timezone.now())
    return {
        "ticket": found,
        "member": member,
        "time_start": start,
        "time_end": end or start + dt.timedelta(hours=hours),
        "notes": note,
    }


def _next_action_id(ticket_entries: Any) -> int:
    ids = [e.payload.get("id") for e in ticket_entries]
    return max((i for i in ids if isinstance(i, int)), default=1) + 1


def _create_actions(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    try:
        body = json.loads(request.body)
    except ValueError as exc:
        raise _exception(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, list):
        # POST Actions takes an array of actions (the spec's request body), even for one.
        raise _exception("The request body must be a JSON array of actions.")
    if not body:
        raise _exception("The request body holds no actions.")
    validated = [(action, _validate_action(account, action)) for action in body]
    created = []
    with transaction.atomic():
        for action, fields in validated:
            # Lock the ticket row: the per-ticket action counter must not hand out an id twice.
            SandboxTicket.objects.select_for_update().get(pk=fields["ticket"].pk)
            action_id = _next_action_id(fields["ticket"].time_entries.all())
            created.append(
                SandboxTimeEntry.objects.create(
                    vendor=VENDOR, account=account, payload={**action, "id": action_id}, **fields
                )
            )
    answers = [_action_json(e) for e in created]
    return JsonResponse(answers[0] if len(answers) == 1 else answers, safe=False)


@api_view("GET", "POST")
def actions(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    if request.method == "POST":
        return _create_actions(request, account)
    entries = account.time_entries.select_related("ticket", "member").order_by("ticket", "id")
    if (ticket_id := _int_param(request, "ticket_id", None)) is not None:
        entries = entries.filter(ticket__ticket_id=ticket_id)
    # Halo's reads lag its writes: what arrived within the lag is not listed yet.
    lag = _option(account, "read_lag_seconds", DEFAULT_READ_LAG_SECONDS)
    entries = entries.filter(received_at__lte=timezone.now() - dt.timedelta(seconds=lag))
    rows = [_action_json(e) for e in entries]
    if count := _int_param(request, "count", None):
        rows = rows[:count]
    return JsonResponse({"record_count": len(rows), "actions": rows})


@require_GET
def ticket_web_page(request: HttpRequest) -> HttpResponse:
    """The agent app's ticket link (``/ticket?id=``): the sandbox page, at the ticket."""
    return ticket_page("halopsa", request.GET.get("id"))


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return ApiError(404, {"message": f"No such resource: {request.path}"}).response()


urlpatterns = [
    path("auth/token", token, name="halopsa-token"),
    path("api/Agent", agents, name="halopsa-agents"),
    path("api/Agent/me", agent_me, name="halopsa-agent-me"),
    path("api/Agent/<int:agent_id>", agent, name="halopsa-agent"),
    path("api/Outcome", outcomes, name="halopsa-outcomes"),
    path("api/Tickets/<int:ticket_id>", ticket, name="halopsa-ticket"),
    path("api/Actions", actions, name="halopsa-actions"),
    path(
        "ticket",
        ticket_web_page,
        name="halopsa-ticket-page",
    ),
    re_path(r"^(?P<rest>.*)$", not_found),
]
