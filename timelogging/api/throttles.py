"""Request rates per API key (DRF throttling): one rate for reporting runs, one for reads.

A key that exceeds its rate gets ``429`` with ``Retry-After`` (seconds) and the API's JSON
error shape. Rates are settings (``PIADESK_API_RATE_INGEST``, ``PIADESK_API_RATE_READ``, e.g.
``600/minute``), read on every request so that a changed setting applies at once. Counted per
key (its public prefix), not per address: the automation service may run on many machines
behind one address, and one tenant's busy service must not slow another's.

The counts live in Django's cache: per process with the default local-memory cache, so with N
web processes a key may make up to N times the rate; configure a shared cache for exact
limits.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from timelogging.models import TenantAPIKey


class _APIKeyThrottle(SimpleRateThrottle):
    methods: tuple[str, ...] = ()

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return str(rate) if rate is not None else None

    def allow_request(self, request, view) -> bool:
        # The rate is read now, not when the class was imported (settings may change).
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        if request.method not in self.methods or not isinstance(request.auth, TenantAPIKey):
            return None  # another scope's request, or unauthenticated (answered 401 anyway)
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


class IngestThrottle(_APIKeyThrottle):
    """Reporting runs (``POST``)."""

    scope = "ingest"
    methods = ("POST", "PUT", "PATCH", "DELETE")


class ReadThrottle(_APIKeyThrottle):
    """Reading runs, entries and the CSV export."""

    scope = "read"
    methods = ("GET", "HEAD", "OPTIONS")
