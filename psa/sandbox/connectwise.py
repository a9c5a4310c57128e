"""ConnectWise PSA (Manage) REST API v3.0 stand-in, mounted at ``/sandbox/connectwise/``.

Plain Django views returning JSON; what each one enforces is described in the package
docstring (``psa/sandbox/__init__.py``). Vendor facts come from ``docs/vendors.md``
and the ``TimeEntry`` schema of ConnectWise's OpenAPI document; where the sandbox had to choose
(undocumented behaviour) the choice is commented here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, re_path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from psa.sandbox import conditions
from psa.sandbox.models import (
    SandboxAccount,
    SandboxMember,
    SandboxTicket,
    SandboxTimeEntry,
    Vendor,
)
from psa.sandbox.views import ticket_page

VENDOR = Vendor.CONNECTWISE
VERSION = "v2025.1.12345"
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000  # documented maximum; larger requests are served 1000 rows
CHARGE_TO_TYPES = ("Company", "ServiceTicket", "ProjectTicket", "ChargeCode", "Activity")
BILLABLE_OPTIONS = ("Billable", "DoNotBill", "NoCharge", "NoDefault")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

MEMBER_FIELDS: dict[str, conditions.FieldType] = {
    "id": "int",
    "identifier": "string",
    "firstName": "string",
    "lastName": "string",
    "primaryEmail": "string",
    "officeEmail": "string",
    "inactiveFlag": "bool",
}
ENTRY_FIELDS: dict[str, conditions.FieldType] = {
    "id": "int",
    "chargeToId": "int",
    "chargeToType": "string",
    "notes": "string",
    "billableOption": "string",
    "timeStart": "datetime",
    "timeEnd": "datetime",
    "member/id": "int",
    "member/identifier": "string",
}


class ApiError(Exception):
    """An error answer; raised anywhere below a view, turned into JSON by ``api_view``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, **extra}

    def response(self) -> JsonResponse:
        return JsonResponse(self.body, status=self.status)


def _invalid_entry(errors: list[dict[str, str]]) -> ApiError:
    return ApiError(400, "InvalidObject", "TimeEntry object is invalid", errors=errors)


# --- authentication and plumbing ------------------------------------------------------------
def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _authenticate(request: HttpRequest, codebase: str) -> SandboxAccount:
    codebase = f"{codebase}/"
    # A codebase no account runs is a path that does not exist on that server: 404, before
    # any credential check (piadesk reacts to such a 404 by looking the codebase up again).
    if not SandboxAccount.objects.filter(vendor=VENDOR, codebase=codebase).exists():
        raise ApiError(404, "NotFound", f"No API is served under /{codebase}.")
    unauthorized = ApiError(
        401,
        "Unauthorized",
        "Authentication failed: send Authorization: Basic base64(company+publicKey:privateKey).",
    )
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized from None
    user, colon, private_key = decoded.partition(":")
    company_id, plus, public_key = user.partition("+")
    account = SandboxAccount.objects.filter(vendor=VENDOR, company_id=company_id).first()
    if (
        not (colon and plus)
        or account is None
        or not _equal(public_key, account.public_key)
        or not _equal(private_key, account.private_key)
    ):
        raise unauthorized
    if account.codebase != codebase:
        raise ApiError(404, "NotFound", f"Company {company_id} is not served under /{codebase}.")
    # Every call needs a clientId (a GUID from developer.connectwise.com). The answer to a
    # missing one is not in the vendor documentation we have; integrators report "a 400 with
    # clientId in the error", so: 400 in the validation envelope, with a message naming it.
    if not request.headers.get("clientId", "").strip():
        raise ApiError(400, "InvalidObject", "clientId header is required")
    return account


ApiView = Callable[..., HttpResponse]


def api_view(*methods: str) -> Callable[[ApiView], ApiView]:
    """Authenticate, check the method, and turn ``ApiError`` into its JSON answer."""

    def decorate(view: ApiView) -> ApiView:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, codebase: str, **kwargs: Any) -> HttpResponse:
            try:
                account = _authenticate(request, codebase)
                if request.method not in methods:
                    raise ApiError(
                        405, "MethodNotAllowed", f"{request.method} is not supported here."
                    )
                return view(request, account, **kwargs)
            except ApiError as exc:
                return exc.response()

        return wrapper

    return decorate


def _positive_int(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ApiError(400, "InvalidObject", f"{name} must be a positive integer, got {raw!r}.")
    return value


def _page(request: HttpRequest, rows: list[dict[str, Any]]) -> JsonResponse:
    """One page of ``rows``, with ``Link: <...page=N+1...>; rel="next"`` when more remain."""
    page = _positive_int(request, "page", 1)
    size = min(_positive_int(request, "pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    start = (page - 1) * size
    response = JsonResponse([_trim(row, request) for row in rows[start : start + size]], safe=False)
    if start + size < len(rows):
        query = request.GET.copy()
        query["page"] = str(page + 1)
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        response["Link"] = f'<{next_url}>; rel="next"'
    return response


def _conditions(
    request: HttpRequest, fields: Mapping[str, conditions.FieldType]
) -> conditions.Node | None:
    try:
        return conditions.parse(request.GET.get("conditions", ""), fields)
    except conditions.ConditionError as exc:
        raise ApiError(400, "InvalidObject", f"Invalid conditions: {exc}") from None


def _trim(obj: dict[str, Any], request: HttpRequest) -> dict[str, Any]:
    """Honour ``fields=id,owner/name``: keep only the listed (possibly nested) fields."""
    raw = request.GET.get("fields", "")
    if not raw.strip():
        return obj
    tree: dict[str, Any] = {}
    for item in raw.split(","):
        node = tree
        for part in filter(None, (p.strip().lower() for p in item.split("/"))):
            node = node.setdefault(part, {})

    def keep(value: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, sub in value.items():
            if key.lower() in wanted:
                nested = wanted[key.lower()]
                out[key] = keep(sub, nested) if nested and isinstance(sub, dict) else sub
        return out

    return keep(obj, tree)


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime(TIME_FORMAT) if value else None


def _parse_time(raw: Any) -> dt.datetime | None:
    """An aware datetime from ISO-8601 text with a zone (``...Z``); ``None`` if it is not one."""
    if not isinstance(raw, str):
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    # ConnectWise times are UTC; a time without a zone is refused here so that a client that
    # forgot the "Z" finds out in the sandbox rather than an hour off in production.
    return value.astimezone(dt.UTC) if value.tzinfo else None


def _now(account: SandboxAccount) -> dt.datetime:
    """The sandbox's clock; ``options["clock_offset_seconds"]`` simulates a PSA clock skew."""
    offset = account.options.get("clock_offset_seconds", 0) if account.options else 0
    return timezone.now() + dt.timedelta(seconds=float(offset))


# --- serialisation --------------------------------------------------------------------------
def _member_ref(member: SandboxMember) -> dict[str, Any]:
    return {"id": member.member_id, "identifier": member.identifier, "name": member.name}


def _member_json(member: SandboxMember) -> dict[str, Any]:
    return {
        "id": member.member_id,
        "identifier": member.identifier,
        "firstName": member.first_name,
        "lastName": member.last_name,
        "primaryEmail": member.primary_email,
        "officeEmail": member.office_email,
        "inactiveFlag": member.inactive,
    }


def _ticket_json(ticket: SandboxTicket) -> dict[str, Any]:
    data: dict[str, Any] = {"id": ticket.ticket_id, "summary": ticket.summary}
    if ticket.owner is not None:  # ConnectWise leaves empty references out of its answers
        data["owner"] = _member_ref(ticket.owner)
    data["resources"] = ticket.resources
    return data


def _entry_json(entry: SandboxTimeEntry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": entry.pk,
        "chargeToId": entry.ticket.ticket_id,
        "chargeToType": "ServiceTicket",
        "ticket": {"id": entry.ticket.ticket_id, "summary": entry.ticket.summary},
        "member": _member_ref(entry.member),
        "timeStart": _time(entry.time_start),
    }
    hours = entry.actual_hours  # None while the entry has no end
    if entry.time_end is not None and hours is not None:
        data["timeEnd"] = _time(entry.time_end)
        data["actualHours"] = float(hours)
    data.update(
        billableOption=entry.billable_option,
        notes=entry.notes,
        dateEntered=_time(entry.received_at),
        _info={"lastUpdated": _time(entry.received_at)},
    )
    return data


def _entry_record(entry: SandboxTimeEntry) -> dict[str, Any]:
    """The values ``conditions`` are evaluated against, keyed by API field name."""
    return {
        "id": entry.pk,
        "chargeToId": entry.ticket.ticket_id,
        "chargeToType": "ServiceTicket",
        "notes": entry.notes,
        "billableOption": entry.billable_option,
        "timeStart": entry.time_start,
        "timeEnd": entry.time_end,
        "member/id": entry.member.member_id,
        "member/identifier": entry.member.identifier,
    }


# --- validation of a new time entry ---------------------------------------------------------
def _validate_entry(account: SandboxAccount, body: dict[str, Any]) -> dict[str, Any]:
    """The model fields of a valid entry, or ``ApiError`` listing every field at fault."""
    errors: list[dict[str, str]] = []

    def fail(field: str, message: str, code: str = "InvalidField") -> None:
        errors.append({"code": code, "message": message, "resource": "TimeEntry", "field": field})

    iso_hint = "an ISO-8601 UTC time such as 2026-05-01T14:00:00Z"
    start = end = None
    if body.get("timeStart") in (None, ""):
        fail("timeStart", "timeStart is required.", "NullValue")
    elif (start := _parse_time(body["timeStart"])) is None:
        fail("timeStart", f"timeStart must be {iso_hint}.")
    if body.get("timeEnd") not in (None, ""):
        if (end := _parse_time(body["timeEnd"])) is None:
            fail("timeEnd", f"timeEnd must be {iso_hint}.")
        elif start is not None and end <= start:
            fail("timeEnd", "timeEnd must be after timeStart.")
    elif start is not None and isinstance(body.get("actualHours"), int | float):
        end = start + dt.timedelta(hours=body["actualHours"])

    # ConnectWise refuses time in the future (exact wording unconfirmed). No tolerance: the
    # client is the one that must move its window back (see PSA_CLOCK_SKEW_SECONDS).
    now = _now(account)
    if end is not None and end > now:
        fail("timeEnd", "Time entries cannot be entered in the future.")
    elif start is not None and start > now:
        fail("timeStart", "Time entries cannot be entered in the future.")

    ticket = None
    charge_type = body.get("chargeToType")
    if charge_type not in CHARGE_TO_TYPES:
        fail("chargeToType", f"chargeToType must be one of {', '.join(CHARGE_TO_TYPES)}.")
    elif charge_type != "ServiceTicket":
        fail(
            "chargeToType",
            f"The sandbox supports chargeToType ServiceTicket only, not {charge_type}.",
        )
    else:
        charge_id = body.get("chargeToId")
        if charge_id is None:
            fail("chargeToId", "chargeToId is required for a ServiceTicket.", "NullValue")
        else:
            if isinstance(charge_id, int) and not isinstance(charge_id, bool):
                ticket = account.tickets.filter(ticket_id=charge_id).first()
            if ticket is None:
                fail("chargeToId", f"Ticket {charge_id!r} was not found.")

    member = None
    ref = body.get("member")
    if not isinstance(ref, dict) or (ref.get("id") is None and not ref.get("identifier")):
        fail("member", "member is required: an object with an identifier or an id.", "NullValue")
    else:
        active = account.members.filter(inactive=False)
        key = ref.get("id") if ref.get("id") is not None else ref.get("identifier")
        if isinstance(key, int) and not isinstance(key, bool):
            member = active.filter(member_id=key).first()
        elif isinstance(key, str):
            member = active.filter(identifier__iexact=key).first()  # SQL Server: any case
        if member is None:
            fail("member", f"Member {key} is inactive or not found.")

    billable = body.get("billableOption")
    if billable is not None and billable not in BILLABLE_OPTIONS:
        fail("billableOption", f"billableOption must be one of {', '.join(BILLABLE_OPTIONS)}.")
    notes = body.get("notes") or ""
    if not isinstance(notes, str):
        fail("notes", "notes must be a string.")

    if errors:
        raise _invalid_entry(errors)
    return {
        "ticket": ticket,
        "member": member,
        "time_start": start,
        "time_end": end,
        "notes": notes,
        # Left out by the client, the billing option comes from the ticket's agreement; the
        # sandbox's agreements all say "Billable".
        "billable_option": billable or "Billable",
    }


# --- views ----------------------------------------------------------------------------------
@require_GET
def companyinfo(request: HttpRequest, company_id: str) -> JsonResponse:
    """No auth. An unknown company is answered with the JSON literal ``null`` and status 200."""
    account = SandboxAccount.objects.filter(vendor=VENDOR, company_id=company_id).first()
    if account is None:
        return JsonResponse(None, safe=False)
    return JsonResponse(
        {
            "CompanyName": account.name or account.company_id,
            "Codebase": account.codebase,
            "VersionCode": VERSION.rsplit(".", 1)[0],
            "CompanyID": account.company_id,
            "IsCloud": False,
            "SiteUrl": f"{request.get_host()}{request.path.split('/login/')[0]}",
        }
    )


@api_view("GET")
def system_info(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    return JsonResponse(
        {"version": VERSION, "isCloud": False, "serverTimeZone": "UTC", "cloudRegion": "NA"}
    )


@api_view("GET")
def members(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    where = _conditions(request, MEMBER_FIELDS)
    rows = [_member_json(m) for m in account.members.order_by("member_id")]
    return _page(request, [row for row in rows if conditions.matches(where, row)])


@api_view("GET")
def ticket(request: HttpRequest, account: SandboxAccount, ticket_id: int) -> JsonResponse:
    found = account.tickets.select_related("owner").filter(ticket_id=ticket_id).first()
    if found is None:
        raise ApiError(404, "NotFound", f"Ticket {ticket_id} not found")
    return JsonResponse(_trim(_ticket_json(found), request))


@api_view("GET", "POST")
def time_entries(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    if request.method == "GET":
        where = _conditions(request, ENTRY_FIELDS)
        entries = account.time_entries.select_related("ticket", "member").order_by("id")
        return _page(
            request,
            [_entry_json(e) for e in entries if conditions.matches(where, _entry_record(e))],
        )
    try:
        body = json.loads(request.body)
    except ValueError as exc:
        raise ApiError(400, "InvalidObject", f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidObject", "The request body must be a TimeEntry JSON object.")
    entry = SandboxTimeEntry.objects.create(
        vendor=VENDOR, account=account, payload=body, **_validate_entry(account, body)
    )
    return JsonResponse(_entry_json(entry), status=201)


@require_GET
def entries_json(request: HttpRequest) -> JsonResponse:
    """Sandbox-only convenience (no auth): every ConnectWise entry received, oldest first."""
    entries = SandboxTimeEntry.objects.filter(vendor=VENDOR).select_related(
        "account", "ticket", "member"
    )
    return JsonResponse(
        [
            {
                "id": e.pk,
                "company": e.account.company_id,
                "ticket": e.ticket.ticket_id,
                "member": e.member.identifier,
                "timeStart": _time(e.time_start),
                "timeEnd": _time(e.time_end),
                "notes": e.notes,
            }
            for e in entries.order_by("id")
        ],
        safe=False,
    )


@require_GET
def ticket_web_page(request: HttpRequest) -> HttpResponse:
    """The web client's ticket link (``service_recid``): the sandbox page, at the ticket."""
    return ticket_page("connectwise", request.GET.get("service_recid"))


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return ApiError(404, "NotFound", f"No such resource: {request.path}").response()


API = "<str:codebase>/apis/3.0/"
urlpatterns = [
    path("login/companyinfo/<str:company_id>", companyinfo, name="connectwise-companyinfo"),
    path("entries.json", entries_json, name="connectwise-entries"),
    path(f"{API}system/info", system_info, name="connectwise-system-info"),
    path(f"{API}system/members", members, name="connectwise-members"),
    path(f"{API}service/tickets/<int:ticket_id>", ticket, name="connectwise-ticket"),
    path(f"{API}time/entries", time_entries, name="connectwise-time-entries"),
    path(
        "v4_6_release/services/system_io/Service/fv_sr100_request.rpp",
        ticket_web_page,
        name="connectwise-ticket-page",
    ),
    re_path(r"^(?P<rest>.*)$", not_found),
]
