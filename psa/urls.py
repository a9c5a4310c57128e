"""Checks for the addresses staff type into a PSA connection (site, discovery URL).

Shared by the vendor backends' ``validate_config``: https everywhere, plain http only for
loopback addresses (the local sandbox), no credentials, query strings or fragments.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # 127.0.0.0/8 and ::1
    except ValueError:
        return False


def address_error(value: Any, *, what: str, example: str) -> str | None:
    """Why ``value`` is not an acceptable address (``what``, e.g. "the site address"), or None.

    ``example`` completes the messages, e.g. "e.g. https://api-na.myconnectwise.net".
    """
    if not isinstance(value, str):
        return f"Enter {what} as text, {example}."
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return f"This is not a valid address; enter {what}, {example}."
    if parts.scheme not in ("http", "https") or not host:
        return f"Enter the full address starting with https://, {example}."
    if parts.query or parts.fragment or value.strip().endswith(("?", "#")):
        return f"Remove the query string (?...) and fragment (#...), {example}."
    if parts.username or parts.password:
        return "Remove the user name and password from the address: keys go in their own fields."
    if parts.scheme == "http" and not is_loopback(host):
        # Plain http would send the API keys in clear; only the local sandbox may use it.
        return "Use https://. Plain http is allowed only for loopback addresses (local sandbox)."
    return None
