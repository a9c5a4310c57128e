"""The one outgoing HTTP session: transport failures classified, exchanges recorded safely."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
import requests
import responses

from psa.base import ConfigurationError, RetryableError, UnknownOutcomeError
from psa.http import PSASession, mask_secrets
from psa.outbound import OutboundPolicy

LOOPBACK = OutboundPolicy.from_networks(["127.0.0.0/8"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_is_retryable_since_nothing_was_sent():
    session = PSASession(connect_timeout=2, read_timeout=2)
    with pytest.raises(RetryableError):
        session.request("POST", f"http://127.0.0.1:{free_port()}/time/entries", json_body={})
    assert session.exchanges[0].status is None


@pytest.mark.parametrize(
    "exc,error",
    [
        (requests.ConnectTimeout("connect timed out"), RetryableError),
        (requests.ReadTimeout("read timed out"), UnknownOutcomeError),
        (requests.ConnectionError("Connection aborted. RemoteDisconnected"), UnknownOutcomeError),
        (requests.exceptions.ChunkedEncodingError("broken"), UnknownOutcomeError),
    ],
)
def test_transport_failures(exc, error):
    session = PSASession()
    with responses.RequestsMock() as mock:
        mock.post("https://psa.example/x", body=exc)
        with pytest.raises(error):
            session.request("POST", "https://psa.example/x", json_body={"a": 1})


def test_exchanges_keep_the_query_and_drop_the_secrets():
    session = PSASession(secrets=["s3cr3t-value"])
    with responses.RequestsMock() as mock:
        mock.get(
            "https://psa.example/members",
            json={"echo": "s3cr3t-value", "access_token": "tok123"},
        )
        response = session.request(
            "GET",
            "https://psa.example/members",
            params={"conditions": 'identifier="jdoe"', "page": 2},
            headers={"Authorization": "Basic s3cr3t-value"},
        )
    assert response.status == 200
    [exchange] = session.exchanges
    assert "conditions=identifier" in exchange.url and "page=2" in exchange.url
    assert "s3cr3t-value" not in exchange.response_excerpt
    assert "tok123" not in exchange.response_excerpt


def test_timeouts_are_always_set():
    seen = {}

    class Recorder(requests.Session):
        def request(self, *args, **kwargs):
            seen.update(kwargs)
            raise requests.ConnectTimeout("x")

    session = PSASession(connect_timeout=3, read_timeout=7, session=Recorder())
    with pytest.raises(RetryableError):
        session.request("GET", "https://psa.example/")
    assert seen["timeout"] == (3, 7)
    assert seen["allow_redirects"] is False


def test_mask_secrets_in_form_bodies():
    text = "grant_type=client_credentials&client_id=abc&client_secret=hunter22"
    assert "hunter22" not in mask_secrets(text)


# --- the attempt's deadline -----------------------------------------------------------------
class FakeClock:
    """``time.monotonic`` as the test says: responses advance it to stand for slow PSAs."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def answer(self, seconds: float, status: int = 200, body: str = "{}"):
        """A ``responses`` callback that takes ``seconds`` of the clock to answer."""

        def callback(request):
            self.now += seconds
            return status, {}, body

        return callback


def test_a_request_after_the_deadline_is_not_sent_and_did_not_reach_the_psa():
    clock = FakeClock()
    budget_spent = []
    session = PSASession(
        deadline_seconds=60,
        clock=clock,
        before_request=lambda method, url: budget_spent.append(url),
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback("GET", "https://psa.example/zone", callback=clock.answer(61))
        mock.add_callback("POST", "https://psa.example/entries", callback=clock.answer(1))
        assert session.request("GET", "https://psa.example/zone").status == 200
        with pytest.raises(RetryableError) as late:
            session.request("POST", "https://psa.example/entries", json_body={"a": 1})
        assert [c.request.url for c in mock.calls] == ["https://psa.example/zone"]
    assert "deadline (60 s)" in late.value.message
    assert "did not reach the PSA" in late.value.message
    # Nothing sent, nothing spent from the request budget, no exchange recorded for it.
    assert budget_spent == ["https://psa.example/zone"]
    assert len(session.exchanges) == 1


def test_each_request_gets_at_most_what_is_left_of_the_deadline():
    clock = FakeClock()
    seen = []

    class Recorder(requests.Session):
        def request(self, *args, **kwargs):
            seen.append(kwargs["timeout"])
            raise requests.ConnectTimeout("x")

    session = PSASession(
        connect_timeout=5, read_timeout=30, deadline_seconds=60, clock=clock, session=Recorder()
    )
    for now in (1000.0, 1050.0, 1058.5):
        clock.now = now
        with pytest.raises(RetryableError):
            session.request("GET", "https://psa.example/")
    assert seen == [(5, 30), (5, 10.0), (1.5, 1.5)]


def test_without_a_deadline_the_timeouts_stand_alone():
    clock = FakeClock()
    session = PSASession(connect_timeout=5, read_timeout=30, clock=clock)
    with responses.RequestsMock() as mock:
        mock.add_callback("GET", "https://psa.example/", callback=clock.answer(10_000))
        session.request("GET", "https://psa.example/")
        session.request("GET", "https://psa.example/")
    assert len(session.exchanges) == 2


def test_a_create_cut_short_by_the_deadline_is_an_unknown_outcome():
    clock = FakeClock()
    session = PSASession(read_timeout=30, deadline_seconds=60, clock=clock)
    clock.now += 55  # discovery and look-ups took most of the attempt
    with responses.RequestsMock() as mock:
        mock.post("https://psa.example/entries", body=requests.ReadTimeout("read timed out"))
        with pytest.raises(UnknownOutcomeError) as unknown:
            session.request("POST", "https://psa.example/entries", json_body={"a": 1})
    assert "within 5 s" in unknown.value.message
    assert "deadline (60 s)" in unknown.value.message
    assert session.exchanges[0].status is None  # it was sent: recorded for the auditors


def test_the_deadline_counts_from_when_the_session_starts():
    clock = FakeClock()
    session = PSASession(deadline_seconds=60, clock=clock)
    clock.now += 60
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get("https://psa.example/", json={})
        with pytest.raises(RetryableError):
            session.request("GET", "https://psa.example/")
        assert not mock.calls


# --- keep-alive across attempts (the worker's posting) ----------------------------------------
class _KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: set[tuple[str, int]] = set()
    cookies_seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).connections.add(self.client_address)
        type(self).cookies_seen.append(self.headers.get("Cookie", ""))
        self.send_response(200)
        self.send_header("Set-Cookie", "psa-session=from-an-earlier-attempt")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def keep_alive_server():
    _KeepAliveHandler.connections = set()
    _KeepAliveHandler.cookies_seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _attempt(url: str, *, key: str | None, policy: OutboundPolicy = LOOPBACK) -> PSASession:
    session = PSASession(policy=policy, keep_alive_key=key, deadline_seconds=30)
    session.request("GET", url)
    session.close()  # what entry_post does after each attempt
    return session


def test_attempts_of_one_connection_share_one_tcp_connection(keep_alive_server):
    attempts = [_attempt(keep_alive_server, key="psa-connection-1-1") for _ in range(3)]
    assert len(_KeepAliveHandler.connections) == 1
    # Only the pool is shared: each attempt records its own exchange.
    assert [len(a.exchanges) for a in attempts] == [1, 1, 1]
    # Cookies a PSA set in one attempt are not sent by the next.
    assert _KeepAliveHandler.cookies_seen == ["", "", ""]


def test_without_a_key_each_attempt_opens_its_own_connection(keep_alive_server):
    for _ in range(2):
        _attempt(keep_alive_server, key=None)
    assert len(_KeepAliveHandler.connections) == 2


def test_a_kept_pool_is_never_used_under_another_policy(keep_alive_server):
    _attempt(keep_alive_server, key="psa-connection-2-1")
    # The same connection's key, but a policy that refuses loopback: a new pool, which checks
    # the address again instead of reusing the socket opened under the first policy.
    with pytest.raises(ConfigurationError):
        _attempt(keep_alive_server, key="psa-connection-2-1", policy=OutboundPolicy())
    assert len(_KeepAliveHandler.connections) == 1
