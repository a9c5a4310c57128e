"""An attempt's HTTP exchanges as people read them: one collapsible block per request (method,
address, status with its phrase, duration), the request and the response bodies pretty-printed
when they are JSON. What is shown is what ``psa.http.PSASession`` recorded: secrets already
masked, bodies already cut to their excerpt length."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from timelogging.admin.display import duration_text


@dataclass(frozen=True)
class ShownExchange:
    method: str
    url: str
    status: str
    ok: bool
    duration: str
    request: str
    response: str


def pretty_body(text: str) -> str:
    """JSON indented for reading; anything else (an excerpt cut mid-JSON, HTML) as it came."""
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def status_text(status: Any) -> str:
    if status is None:
        return "no answer"
    try:
        return f"{status} {HTTPStatus(int(status)).phrase}"
    except ValueError:
        return str(status)


def shown_exchanges(exchanges: Iterable[Mapping[str, Any]]) -> list[ShownExchange]:
    shown = []
    for exchange in exchanges:
        status = exchange.get("status")
        shown.append(
            ShownExchange(
                method=str(exchange.get("method", "")),
                url=str(exchange.get("url", "")),
                status=status_text(status),
                ok=isinstance(status, int) and status < 400,
                duration=duration_text(float(exchange.get("duration_ms") or 0) / 1000),
                request=pretty_body(str(exchange.get("request_excerpt") or "")),
                response=pretty_body(str(exchange.get("response_excerpt") or "")),
            )
        )
    return shown


def exchanges_html(exchanges: Iterable[Mapping[str, Any]] | None) -> SafeString:
    return SafeString(
        render_to_string(
            "admin/timelogging/timeentry/exchanges.html",
            {"exchanges": shown_exchanges(exchanges or [])},
        )
    )
