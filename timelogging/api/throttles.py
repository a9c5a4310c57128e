"""Request rates per API key (DRF throttling): one rate for reporting runs, one for reads.

A key that exceeds its rate gets ``429`` with ``Retry-After`` (seconds) and the API's JSON
error shape. Rates are settings (``PIADESK_API_RATE_INGEST``, ``PIADESK_API_RATE_READ``, e.g.
``600/minute``), read on every request so that a changed setting applies at once. Counted per
key (its public prefix), not per address: the automation service may run on many machines
behind one address, and one tenant's busy service must not slow another's.

``n/period`` is a bucket of ``n`` requests that refills at ``n`` per period (GCRA, the generic
cell rate algorithm): a key may send ``n`` at once after a quiet period, and ``n`` per period on
average; a refused request costs nothing. The state is one number per key, the time at which
its bucket would be full again. DRF's ``SimpleRateThrottle`` kept the time of every request of
the last period instead and read and wrote the whole list through the cache on each request:
at 600 a minute a list of 600 floats, at a rate set high for a busy service thousands (250 µs
of CPU per ingest at 5,000, measured in ``make bench``, more than the rest of the throttle).

The state lives in Django's cache: per process with the default local-memory cache, so with N
web processes a key may make up to N times the rate; configure a shared cache for exact
limits.
"""

from __future__ import annotations

import math
from typing import cast

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from timelogging.models import TenantAPIKey


class _APIKeyThrottle(SimpleRateThrottle):
    methods: tuple[str, ...] = ()
    refused_for = 0.0  # seconds until the refused request would be accepted

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return str(rate) if rate is not None else None

    def allow_request(self, request, view) -> bool:
        # The rate is read now, not when the class was imported (settings may change).
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        requests, period = cast(tuple[int, int], self.parse_rate(self.rate))
        if requests <= 0:  # "0/minute": the scope is closed
            self.refused_for = period
            return False
        now = self.timer()
        # When the bucket would be full again with this request taken from it.
        full_at = max(self.cache.get(self.key, now), now) + period / requests
        if full_at - now > period:  # the bucket is empty
            self.refused_for = full_at - period - now
            return False
        self.cache.set(self.key, full_at, math.ceil(full_at - now))
        return True

    def wait(self) -> float:
        return self.refused_for

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
