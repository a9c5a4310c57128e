"""The outbound policy (issue 9, finding 2): PSA requests never reach piadesk's own network.

Checked where the socket is opened, so the table below goes through ``PSASession`` (the one
place requests leave piadesk) with a faked resolver and a connector that fails the test if a
refused address is ever dialled.
"""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
import requests

from psa import outbound
from psa.base import ConfigurationError, RetryableError
from psa.http import PSASession
from psa.outbound import GuardedAdapter, OutboundPolicy, OutboundRefused

STRICT = OutboundPolicy()
LOOPBACK = OutboundPolicy.from_networks(["127.0.0.0/8", "::1/128"])
PUBLIC = "93.184.215.14"

REFUSED_V4 = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "not a public"),
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.0.5", "link-local"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("100.100.100.200", "metadata"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "not a public"),  # documentation
    ("198.18.0.1", "not a public"),  # benchmarking
]
REFUSED_V6 = [
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fd00::1", "unique-local"),
    ("fc00::abcd", "unique-local"),
    ("fd00:ec2::254", "metadata"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:a9fe:a9fe", "metadata"),  # the same, in hex
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
    ("2001:db8::1", "not a public"),  # documentation
]


@pytest.fixture
def dialled(monkeypatch):
    """Every address a connection is opened to; none is really dialled (refused at once, as
    if nothing listened)."""
    seen: list[str] = []

    def connect(address, *args, **kwargs):
        seen.append(address[0])
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(outbound, "create_connection", connect)
    return seen


@pytest.fixture
def dns(monkeypatch):
    """Fake DNS answers: ``dns["name"] = ["10.0.0.1", ...]`` (a list per lookup when given a
    list of lists, for rebinding)."""
    answers: dict[str, list] = {}
    asked: list[str] = []

    def getaddrinfo(host, port, *args):
        asked.append(host)
        try:
            value = answers[host]
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        if value and isinstance(value[0], list):
            value = value.pop(0)
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port, 0, 0) if ":" in ip else (ip, port),
            )
            for ip in value
        ]

    monkeypatch.setattr(outbound, "getaddrinfo", getaddrinfo)
    answers["asked"] = asked
    return answers


def _url_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


@pytest.mark.parametrize(("ip", "why"), REFUSED_V4 + REFUSED_V6)
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_refused_addresses_are_never_dialled(dialled, ip, why, scheme):
    session = PSASession(policy=STRICT)
    with pytest.raises(ConfigurationError) as refused:
        session.request("GET", f"{scheme}://{_url_host(ip)}:8443/login/companyinfo/acme")
    assert dialled == []
    assert why in str(refused.value)
    assert "PIADESK_PSA_ALLOWED_NETWORKS" in str(refused.value)
    # Recorded for the auditors like any other attempt, with nothing sent.
    [exchange] = session.exchanges
    assert exchange.status is None and exchange.response_excerpt.startswith("refused")


@pytest.mark.parametrize(("ip", "why"), REFUSED_V4 + REFUSED_V6)
def test_names_resolving_to_refused_addresses_are_never_dialled(dialled, dns, ip, why):
    dns["psa.attacker.example"] = [ip]
    session = PSASession(policy=STRICT)
    with pytest.raises(ConfigurationError) as refused:
        session.request("GET", "https://psa.attacker.example/v4_6_release/apis/3.0/system/info")
    assert dialled == []
    assert "psa.attacker.example" in str(refused.value) and why in str(refused.value)


@pytest.mark.parametrize(
    "name",
    ["metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata", "instance-data"],
)
def test_metadata_names_are_refused_without_asking_dns(dialled, dns, name):
    with pytest.raises(ConfigurationError, match="metadata"):
        PSASession(policy=STRICT).request("GET", f"https://{name}/computeMetadata/v1/")
    assert dialled == [] and dns["asked"] == []


def test_a_name_with_one_private_answer_among_public_ones_is_refused(dialled, dns):
    dns["mixed.example"] = [PUBLIC, "10.0.0.7"]
    with pytest.raises(ConfigurationError, match="10.0.0.7"):
        PSASession(policy=STRICT).request("GET", "https://mixed.example/")
    assert dialled == []


def test_dns_rebinding_is_caught_when_connecting(dialled, dns):
    # Public when the address is checked on save, the metadata service a moment later.
    dns["rebind.example"] = [[PUBLIC], ["169.254.169.254"]]
    assert STRICT.check_host("rebind.example") is None
    with pytest.raises(ConfigurationError, match="169.254.169.254"):
        PSASession(policy=STRICT).request("GET", "https://rebind.example/")
    assert dialled == []


def test_a_public_address_is_dialled_by_the_address_it_was_vetted_at(dialled, dns):
    dns["psa.example"] = [PUBLIC]
    with pytest.raises(RetryableError, match="Could not connect"):
        PSASession(policy=STRICT).request("GET", "https://psa.example/")
    # Connected to the vetted address (the Host header and TLS keep the name: urllib3 wraps
    # the socket with server_hostname=host after _new_conn).
    assert dialled == [PUBLIC]


def test_allowed_networks_let_an_on_premises_psa_through(dialled, dns):
    dns["psa.corp.example"] = ["10.20.0.5"]
    policy = OutboundPolicy.from_networks(["10.20.0.0/16"])
    with pytest.raises(RetryableError):
        PSASession(policy=policy).request("GET", "https://psa.corp.example/")
    assert dialled == ["10.20.0.5"]
    # Only that network: the rest of the private space stays closed.
    dns["other.corp.example"] = ["10.30.0.5"]
    with pytest.raises(ConfigurationError):
        PSASession(policy=policy).request("GET", "https://other.corp.example/")


def test_metadata_addresses_stay_refused_inside_an_allowed_network(dialled):
    policy = OutboundPolicy.from_networks(["169.254.0.0/16"])
    with pytest.raises(ConfigurationError, match="metadata"):
        PSASession(policy=policy).request("GET", "http://169.254.169.254/latest/meta-data/")
    assert dialled == []


def test_environment_proxies_are_not_used(monkeypatch, dialled):
    # A proxy would connect on piadesk's behalf, past the check.
    monkeypatch.setenv("HTTPS_PROXY", "http://203.0.113.9:3128")
    with pytest.raises(ConfigurationError):
        PSASession(policy=STRICT).request("GET", "https://10.0.0.1/")
    assert dialled == []


def test_the_policy_comes_from_the_settings(settings, dialled):
    settings.PIADESK_PSA_ALLOWED_NETWORKS = []
    with pytest.raises(ConfigurationError):
        PSASession().request("GET", "http://127.0.0.1:9/")
    settings.PIADESK_PSA_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with pytest.raises(RetryableError):
        PSASession().request("GET", "http://127.0.0.1:9/")
    assert dialled == ["127.0.0.1"]


# --- redirects ------------------------------------------------------------------------------
class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/iam/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirecting_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_redirect_to_a_refused_address_is_not_followed(redirecting_server, monkeypatch):
    dialled: list[str] = []
    real = outbound.create_connection

    def connect(address, *args, **kwargs):
        dialled.append(address[0])
        return real(address, *args, **kwargs)

    monkeypatch.setattr(outbound, "create_connection", connect)
    response = PSASession(policy=LOOPBACK).request("GET", f"{redirecting_server}/login")
    assert response.status == 302
    assert dialled == ["127.0.0.1"]


def test_a_followed_redirect_is_vetted_when_connecting_too(redirecting_server):
    # PSASession follows no redirect; were one followed (here by requests itself), the
    # guard refuses the new address when its socket is opened.
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", GuardedAdapter(LOOPBACK))
    with pytest.raises(OutboundRefused, match="169.254.169.254"):
        session.get(f"{redirecting_server}/login", allow_redirects=True, timeout=5)
