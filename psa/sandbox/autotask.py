"""Autotask REST API v1.0 stand-in, mounted at ``/sandbox/autotask/``.

Plain Django views returning JSON. Vendor facts come from ``docs/vendors.md`` and
the sources cited in ``psa/autotask.py``; where Autotask's exact wording or behaviour is not
documented, the choice made here is marked "unconfirmed".

Connecting piadesk to it
    Seed an account (``psa.sandbox.seed.seed_autotask()``: API user ``api@demo-msp.example``,
    integration code ``AUTOTASK_DEMO_INTEGRATION_CODE``, secret ``AUTOTASK_DEMO_SECRET``) and
    give the piadesk connection the zone discovery address
    ``http://127.0.0.1:<port>/sandbox/autotask/``. The account is a ``SandboxAccount`` with
    ``company_id`` = the API user name, ``public_key`` = the integration code, ``private_key``
    = the secret; resources are ``SandboxMember`` rows (``primary_email`` → ``email``,
    ``office_email`` → ``email2``, ``extra["email3"]``, ``extra["default_role_id"]``); tickets
    carry ``extra["assigned_role_id"]`` beside their owner (the assigned resource).

What it enforces
    - ``GET v1.0/zoneInformation?user=`` (no auth): ``{"zoneName","url","webUrl","ci"}`` with
      ``url`` = this stand-in's own address; an unknown user is HTTP 500
      ``{"errors":["Zone information could not be determined"]}``.
    - Every other call: header ``UserName`` naming an account, else 500; then ``Secret``,
      else **401**; then ``ApiIntegrationCode``, else 500 ``"IntegrationCode is invalid."``
      (the order and statuses reported in apigrate/autotask-restapi#19; the wording of the
      user-name and 401 answers is unconfirmed).
    - ``GET v1.0/ThresholdInformation``; ``POST v1.0/{Resources|ResourceServiceDeskRoles|
      TimeEntries}/query`` (or ``GET .../query?search={json}``) with ``MaxRecords`` (1–500,
      default 500) and ``filter`` (ops eq, noteq, contains, beginsWith, endsWith, in, exist,
      notExist, and/or groups; strings compare case-insensitively; booleans must be
      true/false), answered ``{"items","pageDetails":{"count","requestCount","prevPageUrl",
      "nextPageUrl"}}``; ``nextPageUrl`` (``.../query/next?paging=...``, GET or POST) is a
      cursor to the following page. ``GET v1.0/{Resources|Tickets|TimeEntries}/{id}`` →
      ``{"item": {...}}`` or ``{"item": null}``. ``GET v1.0/{entity}/entityInformation`` →
      ``{"info": {"name","canCreate",...,"userAccessForCreate",...}}``, access levels as the
      documented numbers 0 (None), 1 (All), 2 (Restricted) (REST_EntityInformationCall); for
      TimeEntries ``userAccessForCreate`` is ``options["time_entry_create_access"]``.
    - ``POST v1.0/TimeEntries`` → ``{"itemId": N}``. Every refusal is HTTP 500
      ``{"errors":[message]}``, one message, checked in this order: a body that is not a JSON
      object; ``ticketID`` not a ticket of the account; ``resourceID`` not an active resource;
      **proxy time entry**: a ``resourceID`` other than the API user's own resource (the one
      whose e-mail is the API user name) is refused with "The logged in Resource does not have
      the adequate permissions to create this entity type." unless
      ``options["proxy_time_entry"]`` is true or the request impersonates exactly that resource
      (``ImpersonationResourceId``; a resource with ``extra["impersonation_allowed"] = False``
      cannot be impersonated); ``roleID`` missing ("TimeEntries for Tickets must have a
      roleID") or other than the ticket's assigned role or the resource's default role ("Role
      does not exist or is invalid"), and for the ticket's assigned resource other than the
      ticket's assigned role unless ``options["role_change_allowed"]``; ``dateWorked``,
      ``startDateTime``, ``endDateTime``
      missing or not ISO-8601 with a zone, or end not after start; ``hoursWorked`` not a
      number in (0, 24]; ``summaryNotes``/``internalNotes`` over 8000 characters.
    - ``POST v1.0/Tickets/{id}/TimeEntries`` and any unknown path: 404, like Autotask (time
      entries have no parent entity).

Switches (``SandboxAccount.options``)
    ``proxy_time_entry`` (default false); ``role_change_allowed`` (default false);
    ``current_request_count`` (what
    ``ThresholdInformation`` reports as used this hour, default 0);
    ``time_entry_create_access`` (what ``TimeEntries/entityInformation`` says of the API
    user's right to create time entries: 0 None, 1 All (default), 2 Restricted). As in
    Autotask, nothing tells whether Proxy Time Entry is on: only a create does.

Sandbox-only convenience (no auth)
    ``GET /sandbox/autotask/entries.json`` — every Autotask entry received.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hmac
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, re_path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from psa.sandbox.models import (
    SandboxAccount,
    SandboxMember,
    SandboxTicket,
    SandboxTimeEntry,
    Vendor,
)

VENDOR = Vendor.AUTOTASK
MAX_RECORDS = 500
NOTES_MAX_CHARS = 8000
THRESHOLD = 10000
TIMEFRAME_MINUTES = 60
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

PERMISSION_DENIED = (
    "The logged in Resource does not have the adequate permissions to create this entity type."
)
ROLE_MISSING = "TimeEntries for Tickets must have a roleID"
ROLE_INVALID = "Role does not exist or is invalid"
ROLE_MUST_MATCH = "The roleID must match the ticket's assigned resource role."
ZONE_UNKNOWN = "Zone information could not be determined"
INTEGRATION_CODE_INVALID = "IntegrationCode is invalid."
USERNAME_INVALID = "The UserName is not valid for this API."  # unconfirmed wording
SECRET_INVALID = "Authorization has been denied for this request."  # unconfirmed wording

FieldType = str  # "int" | "string" | "bool" | "number"
RESOURCE_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "firstName": "string",
    "lastName": "string",
    "email": "string",
    "email2": "string",
    "email3": "string",
    "userName": "string",
    "isActive": "bool",
    "licenseType": "int",
}
ROLE_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "resourceID": "int",
    "roleID": "int",
    "isDefault": "bool",
    "isActive": "bool",
}
ENTRY_FIELDS: dict[str, FieldType] = {
    "id": "int",
    "ticketID": "int",
    "resourceID": "int",
    "roleID": "int",
    "hoursWorked": "number",
    "summaryNotes": "string",
    "internalNotes": "string",
}
# Resources.licenseType picklist values used here (the real picklist is per instance).
LICENSE_TYPES = {"Full": 1, "API User": 7}


class ApiError(Exception):
    """An error answer in Autotask's envelope, ``{"errors": [message]}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JsonResponse:
        return JsonResponse({"errors": [self.message]}, status=self.status)


# --- authentication and plumbing ------------------------------------------------------------
def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _account_for(username: str) -> SandboxAccount | None:
    username = username.strip()
    if not username:
        return None
    return SandboxAccount.objects.filter(vendor=VENDOR, company_id__iexact=username).first()


def _authenticate(request: HttpRequest) -> SandboxAccount:
    # Order and statuses as reported for the real API: an unknown user name is a 500, a wrong
    # secret for a known user a 401, a wrong integration code with good credentials a 500.
    account = _account_for(request.headers.get("UserName", ""))
    if account is None:
        raise ApiError(500, USERNAME_INVALID)
    if not _equal(request.headers.get("Secret", ""), account.private_key):
        raise ApiError(401, SECRET_INVALID)
    if not _equal(request.headers.get("ApiIntegrationCode", ""), account.public_key):
        raise ApiError(500, INTEGRATION_CODE_INVALID)
    return account


ApiView = Callable[..., HttpResponse]


def api_view(*methods: str) -> Callable[[ApiView], ApiView]:
    """Authenticate, check the method, and turn ``ApiError`` into its JSON answer."""

    def decorate(view: ApiView) -> ApiView:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                account = _authenticate(request)
                if request.method not in methods:
                    # ASP.NET Web API's wording, which Autotask's REST API is built on.
                    return JsonResponse(
                        {
                            "Message": "The requested resource does not support http method "
                            f"'{request.method}'."
                        },
                        status=405,
                    )
                return view(request, account, **kwargs)
            except ApiError as exc:
                return exc.response()

        return wrapper

    return decorate


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("sandbox:index") + "autotask/")


def _json_body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError as exc:
        raise ApiError(500, f"The request body is not valid JSON: {exc}") from None


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime(TIME_FORMAT) if value else None


def _parse_time(raw: Any) -> dt.datetime | None:
    """An aware datetime from ISO-8601 text with a zone; ``None`` when it is not one."""
    if not isinstance(raw, str):
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    # The API measures date-times in UTC; a time without a zone is refused here so that a
    # client that forgot the "Z" finds out in the sandbox, not hours off in production.
    return value.astimezone(dt.UTC) if value.tzinfo else None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# --- serialisation --------------------------------------------------------------------------
def _api_resource(account: SandboxAccount) -> SandboxMember | None:
    """The API user's own resource: the one whose e-mail is the API user name."""
    return account.members.filter(primary_email__iexact=account.company_id).first()


def _default_role(member: SandboxMember) -> int | None:
    role = (member.extra or {}).get("default_role_id")
    return role if _is_int(role) else None


def _resource_json(member: SandboxMember) -> dict[str, Any]:
    extra = member.extra or {}
    return {
        "id": member.member_id,
        "userName": member.identifier,
        "firstName": member.first_name,
        "lastName": member.last_name,
        "email": member.primary_email,
        "email2": member.office_email,
        "email3": extra.get("email3", ""),
        "isActive": not member.inactive,
        "licenseType": LICENSE_TYPES.get(extra.get("license", "Full"), 1),
        "resourceType": "Employee",
    }


def _role_rows(members: Iterable[SandboxMember]) -> list[dict[str, Any]]:
    rows = []
    for member in members:
        if (role := _default_role(member)) is not None:
            rows.append(
                {
                    # A stable id per (resource, role) pair.
                    "id": member.member_id * 1000 + role,
                    "resourceID": member.member_id,
                    "roleID": role,
                    "isDefault": True,
                    "isActive": not member.inactive,
                }
            )
    return rows


def _ticket_json(ticket: SandboxTicket) -> dict[str, Any]:
    owner = ticket.owner
    role = (ticket.extra or {}).get("assigned_role_id") if owner is not None else None
    return {
        "id": ticket.ticket_id,
        "ticketNumber": f"T20260501.{ticket.ticket_id:04d}",
        "title": ticket.summary,
        "status": 1,
        "assignedResourceID": owner.member_id if owner is not None else None,
        "assignedResourceRoleID": role,
    }


def _entry_json(entry: SandboxTimeEntry) -> dict[str, Any]:
    payload = entry.payload or {}
    return {
        "id": entry.pk,
        "ticketID": entry.ticket.ticket_id,
        "resourceID": entry.member.member_id,
        "roleID": payload.get("roleID"),
        "dateWorked": payload.get("dateWorked"),
        "startDateTime": _time(entry.time_start),
        "endDateTime": _time(entry.time_end),
        "hoursWorked": payload.get("hoursWorked"),
        "summaryNotes": entry.notes,
        "internalNotes": payload.get("internalNotes", ""),
        "createDateTime": _time(entry.received_at),
    }


# --- queries --------------------------------------------------------------------------------
GROUP_OPS = ("and", "or")
FIELD_OPS = ("eq", "noteq", "contains", "beginswith", "endswith", "in", "exist", "notexist")


def _check_value(field: str, kind: FieldType, value: Any) -> Any:
    if kind == "bool":
        # "When supplying boolean values to the REST API, you must specify either true or
        # false. Any other values, including those which are null, will return an error."
        if not isinstance(value, bool):
            raise ApiError(500, f"The value for {field} must be true or false.")
        return value
    if kind in ("int", "number"):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(500, f"The value {value!r} is not valid for {field}.")
        return value
    if not isinstance(value, str):
        raise ApiError(500, f"The value {value!r} is not valid for {field}.")
    return value.casefold()


def _matches(condition: Any, row: dict[str, Any], fields: dict[str, FieldType]) -> bool:
    """Evaluate one filter item against one row; ``ApiError`` for a malformed item."""
    if not isinstance(condition, dict):
        raise ApiError(500, "Each filter item must be an object with op, field and value.")
    op = str(condition.get("op") or "").lower()
    if op in GROUP_OPS:
        items = condition.get("items")
        if not isinstance(items, list) or not items:
            raise ApiError(500, f"The '{op}' group needs a non-empty items list.")
        results = [_matches(item, row, fields) for item in items]
        return all(results) if op == "and" else any(results)
    if op not in FIELD_OPS:
        raise ApiError(500, f"'{condition.get('op')}' is not a valid filter operator.")
    names = {name.lower(): name for name in fields}
    field = names.get(str(condition.get("field") or "").lower())
    if field is None:
        raise ApiError(500, f"Unable to find {condition.get('field')!r} in this entity.")
    actual = row.get(field)
    if op == "exist":
        return actual not in (None, "")
    if op == "notexist":
        return actual in (None, "")
    kind = fields[field]
    if op == "in":
        values = condition.get("value")
        if not isinstance(values, list):
            raise ApiError(500, f"The value for 'in' on {field} must be a list.")
        wanted = [_check_value(field, kind, v) for v in values]
    else:
        wanted = [_check_value(field, kind, condition.get("value"))]
    if actual is None:
        return False  # SQL: null compares with nothing
    if kind == "string":
        actual = str(actual).casefold()
    if op in ("eq", "in"):
        return actual in wanted
    if op == "noteq":
        return bool(actual != wanted[0])
    if kind != "string":
        raise ApiError(500, f"The operator '{condition.get('op')}' cannot be used with {field}.")
    if op == "contains":
        return wanted[0] in actual
    if op == "beginswith":
        return actual.startswith(wanted[0])
    return actual.endswith(wanted[0])  # "endswith"


def _query_spec(body: Any) -> tuple[list[Any], int]:
    if not isinstance(body, dict):
        raise ApiError(500, "The query must be a JSON object with a filter list.")
    filters = body.get("filter")
    if not isinstance(filters, list):
        raise ApiError(500, "The query must have a filter list.")
    max_records = body.get("MaxRecords", MAX_RECORDS)
    if not _is_int(max_records) or not 1 <= max_records <= MAX_RECORDS:
        raise ApiError(500, f"MaxRecords must be between 1 and {MAX_RECORDS}.")
    return filters, max_records


def _encode_cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise ApiError(500, "The paging cursor is not valid.") from None
    if not isinstance(data, dict) or not _is_int(data.get("after")):
        raise ApiError(500, "The paging cursor is not valid.")
    return data


ENTITIES: dict[str, dict[str, FieldType]] = {
    "Resources": RESOURCE_FIELDS,
    "ResourceServiceDeskRoles": ROLE_FIELDS,
    "TimeEntries": ENTRY_FIELDS,
}


def _rows(account: SandboxAccount, entity: str) -> list[dict[str, Any]]:
    if entity == "Resources":
        return [_resource_json(m) for m in account.members.order_by("member_id")]
    if entity == "ResourceServiceDeskRoles":
        return _role_rows(account.members.order_by("member_id"))
    entries = account.time_entries.select_related("ticket", "member").order_by("id")
    return [_entry_json(e) for e in entries]


def _page(
    request: HttpRequest, account: SandboxAccount, entity: str, body: Any, after: int = 0
) -> JsonResponse:
    filters, max_records = _query_spec(body)
    fields = ENTITIES[entity]
    rows = [
        row
        for row in sorted(_rows(account, entity), key=lambda r: r["id"])
        if row["id"] > after and all(_matches(f, row, fields) for f in filters)
    ]
    page = rows[:max_records]
    next_url = None
    if len(rows) > max_records:
        cursor = _encode_cursor(
            {"filter": filters, "MaxRecords": max_records, "after": page[-1]["id"]}
        )
        next_url = f"{_base_url(request)}v1.0/{entity}/query/next?paging={cursor}"
    return JsonResponse(
        {
            "items": page,
            "pageDetails": {
                "count": len(page),
                "requestCount": max_records,
                "prevPageUrl": None,
                "nextPageUrl": next_url,
            },
        }
    )


# --- validation of a new time entry ---------------------------------------------------------
def _validate_entry(request: HttpRequest, account: SandboxAccount, body: Any) -> dict[str, Any]:
    """The model fields of a valid entry, or ``ApiError`` (500) with the first rule broken."""
    if not isinstance(body, dict):
        raise ApiError(500, "The request body must be a TimeEntry JSON object.")
    ticket_id = body.get("ticketID")
    ticket = account.tickets.filter(ticket_id=ticket_id).first() if _is_int(ticket_id) else None
    if ticket is None:
        raise ApiError(500, f"ticketID {ticket_id!r} does not reference an existing ticket.")
    resource_id = body.get("resourceID")
    member = None
    if _is_int(resource_id):
        member = account.members.filter(member_id=resource_id, inactive=False).first()
    if member is None:
        raise ApiError(500, f"resourceID {resource_id!r} is not an active resource.")

    _check_proxy(request, account, member)

    # "Ticket and Task Time Entries must include a roleID that is valid for the resourceID";
    # the sandbox accepts the ticket's assigned role or the resource's default role.
    role_id = body.get("roleID")
    if role_id is None:
        raise ApiError(500, ROLE_MISSING)
    assigned_role = (ticket.extra or {}).get("assigned_role_id")
    allowed = {assigned_role, _default_role(member)} - {None}
    if not _is_int(role_id) or role_id not in allowed:
        raise ApiError(500, ROLE_INVALID)
    # The ticket's assigned resource must log with the ticket's assigned role unless the
    # system setting "Allow users to modify Role when creating/editing time entries on
    # tickets" is on (TimeEntriesEntity.htm; wording unconfirmed).
    if (
        ticket.owner_id == member.pk
        and assigned_role is not None
        and role_id != assigned_role
        and not (account.options or {}).get("role_change_allowed")
    ):
        raise ApiError(500, ROLE_MUST_MATCH)

    times = {}
    for name in ("dateWorked", "startDateTime", "endDateTime"):
        if body.get(name) in (None, ""):
            raise ApiError(500, f"{name} is required.")
        if (moment := _parse_time(body[name])) is None:
            raise ApiError(
                500, f"{name} must be an ISO-8601 UTC time such as 2026-05-01T14:00:00Z."
            )
        times[name] = moment
    if times["endDateTime"] <= times["startDateTime"]:
        raise ApiError(500, "endDateTime must be after startDateTime.")
    hours = body.get("hoursWorked")
    # "The TimeEntry.HoursWorked value must be > 0 and <= 24."
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24:
        raise ApiError(500, "hoursWorked must be greater than 0 and no more than 24.")
    for name in ("summaryNotes", "internalNotes"):
        value = body.get(name) or ""
        if not isinstance(value, str):
            raise ApiError(500, f"{name} must be text.")
        if len(value) > NOTES_MAX_CHARS:
            raise ApiError(
                500, f"{name} is longer than the maximum of {NOTES_MAX_CHARS} characters."
            )
    return {
        "ticket": ticket,
        "member": member,
        "time_start": times["startDateTime"],
        "time_end": times["endDateTime"],
        "notes": body.get("summaryNotes") or "",
    }


def _check_proxy(request: HttpRequest, account: SandboxAccount, member: SandboxMember) -> None:
    """Only the logged-in resource may log its own time, unless Proxy Time Entry allows it.

    The logged-in resource is the API user's, or the impersonated one when the request
    carries ``ImpersonationResourceId``.
    """
    raw = request.headers.get("ImpersonationResourceId")
    if raw is not None:
        raw = raw.strip()
        target = None
        if raw.isdigit():
            target = account.members.filter(member_id=int(raw), inactive=False).first()
        if target is None:
            raise ApiError(500, f"ImpersonationResourceId {raw!r} is not an active resource.")
        # API-only and some license types cannot be impersonated; the security level must
        # "Allow impersonation of resources with this security level".
        if (target.extra or {}).get("impersonation_allowed") is False:
            raise ApiError(500, PERMISSION_DENIED)
        if target.member_id != member.member_id:
            raise ApiError(500, PERMISSION_DENIED)
        return
    own = _api_resource(account)
    if own is not None and own.member_id == member.member_id:
        return
    if not (account.options or {}).get("proxy_time_entry"):
        raise ApiError(500, PERMISSION_DENIED)


# --- views ----------------------------------------------------------------------------------
@require_GET
def zone_information(request: HttpRequest) -> JsonResponse:
    """No auth. An unknown user is an HTTP 500 with Autotask's error envelope."""
    if _account_for(request.GET.get("user", "")) is None:
        return ApiError(500, ZONE_UNKNOWN).response()
    return JsonResponse(
        {
            "zoneName": "Sandbox",
            "url": _base_url(request),
            "webUrl": request.build_absolute_uri(reverse("sandbox:index")),
            "ci": 0,
        }
    )


@api_view("GET")
def threshold_information(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    used = (account.options or {}).get("current_request_count", 0)
    return JsonResponse(
        {
            "externalRequestThreshold": THRESHOLD,
            "requestThresholdTimeframe": TIMEFRAME_MINUTES,
            "currentTimeframeRequestCount": used,
        }
    )


@api_view("GET")
def entity_information(request: HttpRequest, account: SandboxAccount, entity: str) -> HttpResponse:
    if entity not in ENTITIES and entity != "Tickets":
        return not_found(request)
    create = 1
    if entity == "TimeEntries":
        create = (account.options or {}).get("time_entry_create_access", 1)
    return JsonResponse(
        {
            "info": {
                "name": entity,
                "canCreate": entity == "TimeEntries",
                "canDelete": False,
                "canQuery": True,
                "canUpdate": False,
                "userAccessForCreate": create,
                "userAccessForDelete": 0,
                "userAccessForQuery": 1,
                "userAccessForUpdate": 0,
                "hasUserDefinedFields": False,
                "supportsWebhookCallouts": False,
            }
        }
    )


@api_view("GET", "POST")
def query(request: HttpRequest, account: SandboxAccount, entity: str) -> HttpResponse:
    if entity not in ENTITIES:
        return not_found(request)
    if request.method == "GET":
        try:
            body = json.loads(request.GET.get("search", ""))
        except ValueError:
            raise ApiError(500, "search must be a JSON query object.") from None
    else:
        body = _json_body(request)
    return _page(request, account, entity, body)


@api_view("GET", "POST")
def query_next(request: HttpRequest, account: SandboxAccount, entity: str) -> HttpResponse:
    if entity not in ENTITIES:
        return not_found(request)
    cursor = _decode_cursor(request.GET.get("paging", ""))
    return _page(request, account, entity, cursor, after=cursor["after"])


@api_view("GET")
def item(request: HttpRequest, account: SandboxAccount, entity: str, item_id: int) -> HttpResponse:
    # Autotask answers an unknown id with 200 and {"item": null}.
    found: dict[str, Any] | None = None
    if entity == "Resources":
        member = account.members.filter(member_id=item_id).first()
        found = _resource_json(member) if member else None
    elif entity == "Tickets":
        ticket = account.tickets.select_related("owner").filter(ticket_id=item_id).first()
        found = _ticket_json(ticket) if ticket else None
    elif entity == "TimeEntries":
        entry = account.time_entries.select_related("ticket", "member").filter(pk=item_id)
        found = _entry_json(entry[0]) if entry else None
    else:
        return not_found(request)
    return JsonResponse({"item": found})


@api_view("POST")
def time_entries(request: HttpRequest, account: SandboxAccount) -> JsonResponse:
    body = _json_body(request)
    fields = _validate_entry(request, account, body)
    entry = SandboxTimeEntry.objects.create(vendor=VENDOR, account=account, payload=body, **fields)
    return JsonResponse({"itemId": entry.pk})


@require_GET
def entries_json(request: HttpRequest) -> JsonResponse:
    """Sandbox-only convenience (no auth): every Autotask entry received, oldest first."""
    entries = SandboxTimeEntry.objects.filter(vendor=VENDOR).select_related(
        "account", "ticket", "member"
    )
    return JsonResponse(
        [{"apiUser": e.account.company_id, **_entry_json(e)} for e in entries.order_by("id")],
        safe=False,
    )


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    # ASP.NET Web API's wording for a route that does not exist, e.g. Tickets/{id}/TimeEntries.
    message = f"No HTTP resource was found that matches the request URI '{request.path}'."
    return JsonResponse({"Message": message}, status=404)


urlpatterns = [
    path("v1.0/zoneInformation", zone_information, name="autotask-zone"),
    path("entries.json", entries_json, name="autotask-entries"),
    path("v1.0/ThresholdInformation", threshold_information, name="autotask-threshold"),
    path("v1.0/TimeEntries", time_entries, name="autotask-time-entries"),
    path(
        "v1.0/<str:entity>/entityInformation",
        entity_information,
        name="autotask-entity-information",
    ),
    path("v1.0/<str:entity>/query", query, name="autotask-query"),
    path("v1.0/<str:entity>/query/next", query_next, name="autotask-query-next"),
    path("v1.0/<str:entity>/<int:item_id>", item, name="autotask-item"),
    re_path(r"^(?P<rest>.*)$", not_found),
]
