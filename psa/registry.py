"""Which backend serves which vendor. Adding a vendor: one module, one line in ``BACKENDS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psa.autotask import AutotaskBackend
from psa.base import Cache, ConnectionConfig, PSABackend
from psa.connectwise import ConnectWiseBackend
from psa.halopsa import HaloPSABackend
from psa.http import PSASession

BACKENDS: dict[str, type[PSABackend]] = {
    ConnectWiseBackend.vendor: ConnectWiseBackend,
    AutotaskBackend.vendor: AutotaskBackend,
    HaloPSABackend.vendor: HaloPSABackend,
}


def vendor_choices() -> list[tuple[str, str]]:
    return [(vendor, backend.label) for vendor, backend in BACKENDS.items()]


def backend_class(vendor: str) -> type[PSABackend]:
    try:
        return BACKENDS[vendor]
    except KeyError:
        raise ValueError(f"Unknown PSA vendor {vendor!r}") from None


def build_backend(
    config: ConnectionConfig,
    *,
    cache: Cache | None = None,
    http: Any = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    before_request: Callable[[str, str], None] | None = None,
    deadline_seconds: float | None = None,
    keep_alive: bool = False,
) -> PSABackend:
    """A ready backend for one connection, with the shared HTTP session and Django's cache.

    Its requests must all end within ``deadline_seconds`` (default
    ``PSA_ATTEMPT_DEADLINE_SECONDS``) of now: build one backend per attempt. ``keep_alive``:
    its HTTP connections are kept for the next backend of the same connection in this process
    (``psa.http``: the worker's attempts), instead of a new TCP/TLS handshake each.
    """
    from django.conf import settings
    from django.core.cache import cache as django_cache

    if http is None:
        http = PSASession(
            connect_timeout=connect_timeout or settings.PSA_HTTP_CONNECT_TIMEOUT,
            read_timeout=read_timeout or settings.PSA_HTTP_READ_TIMEOUT,
            secrets=list(config.secrets.values()),
            before_request=before_request,
            vendor=config.vendor,
            deadline_seconds=deadline_seconds or settings.PSA_ATTEMPT_DEADLINE_SECONDS,
            keep_alive_key=(config.cache_key or None) if keep_alive else None,
        )
    return backend_class(config.vendor)(config, http=http, cache=cache or django_cache)
