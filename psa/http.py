"""The one outgoing HTTP session for PSA calls. Nothing else imports ``requests``.

- Every request has a (connect, read) timeout; no hidden retries (piadesk's database schedule
  is the only retry layer).
- Transport failures are turned into piadesk's error classes here, because only here do we
  know whether the request could have reached the PSA: a failure to connect is retryable
  (nothing was sent), a read timeout or a dropped connection after sending is an unknown
  outcome (the PSA may have stored the entry).
- One attempt has one deadline (``deadline_seconds``, counted from the session's start): a
  request is never sent after it (``RetryableError``: it did not reach the PSA), and each
  request's timeouts are cut to what is left of it, so an attempt of many requests (discovery,
  look-ups, the look before a repost, the create) ends in time for the worker's task timeout.
  A request the deadline cuts short after sending is an unknown outcome, like any timeout.
- Each exchange is recorded, with secrets masked, for the auditors' history.
- Every connection obeys piadesk's outbound policy (``psa.outbound``), checked when the socket
  is opened: an address refused by it is a ``ConfigurationError`` (nothing was sent), which
  pauses the connection with the reason. Environment proxies and ``.netrc`` are not used
  (``trust_env`` off): a proxy would connect on our behalf, past the check.
- Keep-alive across attempts (``keep_alive_key``, the worker's posting): the connection pool
  (a ``requests.Session`` with the guarded adapter) is kept per connection, process and thread,
  so one TCP (and TLS) handshake serves many entries instead of one each. Only the pool is
  shared: the deadline, the budget hook, the recorded exchanges and the timeouts stay per
  attempt, cookies are cleared at each attempt's start (an attempt never sends what an
  earlier one received), and the key holds the outbound policy, so a reused socket was opened
  to an address vetted by the policy in force. A kept connection stays on the address it was
  vetted for, whatever the name resolves to later.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from time import monotonic
from typing import Any

import requests

from psa.base import ConfigurationError, Exchange, RetryableError, UnknownOutcomeError
from psa.metrics import psa_request_observe
from psa.outbound import GuardedAdapter, OutboundPolicy, OutboundRefused

USER_AGENT = "piadesk/0.1 (+automated time logging)"
EXCERPT_CHARS = 2000
SECRET_HEADER_NAMES = {"authorization", "secret", "apiintegrationcode", "clientid", "cookie"}
SECRET_FIELD_RE = re.compile(
    r"(?i)(client_secret|secret|password|access_token|refresh_token|privatekey)"
    r"(\"?\s*[:=]\s*\"?)([^\"&,\s}]+)"
)


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove secret values from a request or response excerpt."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return SECRET_FIELD_RE.sub(r"\1\2***", text)


class Response:
    """What a backend sees of a response: status, headers, text and parsed JSON."""

    def __init__(self, status: int, headers: Mapping[str, str], text: str) -> None:
        self.status = status
        self.headers = headers
        self.text = text

    def json(self) -> Any:
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def retry_after(self) -> float | None:
        raw = self.headers.get("Retry-After")
        if not raw:
            return None
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None  # HTTP-date form: let the caller's backoff decide


class PSASession:
    """A thin wrapper over one ``requests.Session`` per backend instance."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        secrets: Iterable[str] = (),
        session: requests.Session | None = None,
        before_request: Callable[[str, str], None] | None = None,
        vendor: str = "",
        policy: OutboundPolicy | None = None,
        deadline_seconds: float | None = None,
        clock: Callable[[], float] | None = None,
        keep_alive_key: str | None = None,
    ) -> None:
        self.timeout = (connect_timeout, read_timeout)
        # The attempt's deadline (None: each request's own timeouts only). ``clock`` is
        # ``time.monotonic`` unless a test stands in for it.
        self.clock = clock or monotonic
        self.deadline_seconds = deadline_seconds
        self.deadline = None if deadline_seconds is None else self.clock() + deadline_seconds
        self.vendor = vendor  # the latency histogram's label (psa/metrics.py)
        # Called with (method, url) before each request; may raise RetryableError to hold the
        # request back (piadesk's per-connection request budget).
        self.before_request = before_request
        self.secrets = tuple(s for s in secrets if s)
        policy = policy or OutboundPolicy.from_settings()
        # A kept pool is closed when it leaves the registry, not by this attempt's close().
        self._kept = session is None and keep_alive_key is not None
        if session is not None:
            self._session = _guarded(session, policy)
        elif keep_alive_key is not None:
            self._session = _kept_session(keep_alive_key, policy)
        else:
            self._session = _guarded(requests.Session(), policy)
        self.exchanges: list[Exchange] = []

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Response:
        # Before the budget is spent: a request the deadline stops is never sent.
        timeout = self._timeout_left(url)
        if self.before_request is not None:
            self.before_request(method, url)
        started = self.clock()
        # Record the URL with its query (filter conditions, page): auditors need to see it.
        url_with_query = (
            requests.Request(method, url, params=params).prepare().url or url if params else url
        )
        request_excerpt = ""
        if json_body is not None:
            request_excerpt = json.dumps(json_body, default=str)[:EXCERPT_CHARS]
        elif data is not None:
            request_excerpt = "&".join(f"{k}={v}" for k, v in data.items())[:EXCERPT_CHARS]
        try:
            raw = self._session.request(
                method,
                url,
                headers=dict(headers or {}),
                json=json_body,
                data=data,
                params=params,
                auth=auth,
                timeout=timeout,
                allow_redirects=False,
            )
        except OutboundRefused as exc:
            self._record(method, url_with_query, None, started, request_excerpt, f"refused: {exc}")
            raise ConfigurationError(str(exc)) from exc
        except requests.ConnectTimeout as exc:
            self._record(
                method, url_with_query, None, started, request_excerpt, f"connect timeout: {exc}"
            )
            raise RetryableError(f"Could not connect to the PSA in time ({url}).") from exc
        except requests.ConnectionError as exc:
            self._record(
                method, url_with_query, None, started, request_excerpt, f"connection error: {exc}"
            )
            if _is_connect_failure(exc):
                raise RetryableError(f"Could not connect to the PSA ({url}).") from exc
            # The request may have been sent before the connection dropped.
            raise UnknownOutcomeError(
                f"The connection to the PSA dropped before it answered ({url})."
            ) from exc
        except requests.ReadTimeout as exc:
            self._record(method, url_with_query, None, started, request_excerpt, "read timeout")
            cut = (
                f", what was left of this attempt's deadline ({self.deadline_seconds:g} s)"
                if timeout[1] < self.timeout[1]
                else ""
            )
            raise UnknownOutcomeError(
                f"The PSA did not answer within {timeout[1]:g} s{cut} ({url})."
            ) from exc
        except requests.RequestException as exc:
            self._record(method, url_with_query, None, started, request_excerpt, f"error: {exc}")
            raise UnknownOutcomeError(f"The request to the PSA failed: {exc}") from exc
        response = Response(raw.status_code, raw.headers, raw.text)
        self._record(method, url_with_query, raw.status_code, started, request_excerpt, raw.text)
        return response

    def _timeout_left(self, url: str) -> tuple[float, float]:
        """The (connect, read) timeouts for the next request: the session's, cut to what is
        left of the deadline. Past it, ``RetryableError``: nothing is sent."""
        if self.deadline is None:
            return self.timeout
        left = self.deadline - self.clock()
        if left <= 0:
            raise RetryableError(
                f"This attempt reached its deadline ({self.deadline_seconds:g} s) before its "
                f"next request was sent ({url}): it did not reach the PSA; tried again later."
            )
        connect, read = self.timeout
        return (min(connect, left), min(read, left))

    def _record(
        self,
        method: str,
        url: str,
        status: int | None,
        started: float,
        request_excerpt: str,
        response_excerpt: str,
    ) -> None:
        elapsed = self.clock() - started
        psa_request_observe(vendor=self.vendor, seconds=elapsed)
        self.exchanges.append(
            Exchange(
                method=method,
                url=mask_secrets(url, self.secrets),
                status=status,
                duration_ms=int(elapsed * 1000),
                request_excerpt=mask_secrets(request_excerpt, self.secrets)[:EXCERPT_CHARS],
                response_excerpt=mask_secrets(response_excerpt, self.secrets)[:EXCERPT_CHARS],
            )
        )

    def close(self) -> None:
        if not self._kept:
            self._session.close()


def _guarded(session: requests.Session, policy: OutboundPolicy) -> requests.Session:
    session.trust_env = False
    adapter = GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


# Kept connection pools (``keep_alive_key``): a few per process, the least recently used
# closed beyond that (a worker posts for many tenants; an edited connection gets a new key).
KEPT_SESSIONS = 32
_kept: OrderedDict[tuple[Any, ...], requests.Session] = OrderedDict()
_kept_lock = threading.Lock()


def _kept_session(key: str, policy: OutboundPolicy) -> requests.Session:
    # The pid: a forked process must not share its parent's sockets; the thread: a session's
    # pool is not meant to be shared between threads.
    full_key = (key, policy, os.getpid(), threading.get_ident())
    with _kept_lock:
        session = _kept.get(full_key)
        if session is None:
            session = _kept[full_key] = _guarded(requests.Session(), policy)
            while len(_kept) > KEPT_SESSIONS:
                _kept.popitem(last=False)[1].close()
        else:
            _kept.move_to_end(full_key)
    session.cookies.clear()
    return session


def _is_connect_failure(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established (so nothing was sent)."""
    text = repr(exc)
    markers = (
        "NewConnectionError",
        "Connection refused",
        "Name or service not known",
        "nodename nor servname",
        "Failed to resolve",
        "NameResolutionError",
    )
    return any(marker in text for marker in markers)
