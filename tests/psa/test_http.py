"""The one outgoing HTTP session: transport failures classified, exchanges recorded safely."""

from __future__ import annotations

import socket

import pytest
import requests
import responses

from psa.base import RetryableError, UnknownOutcomeError
from psa.http import PSASession, mask_secrets


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
