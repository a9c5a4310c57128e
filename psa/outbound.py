"""piadesk's outbound policy: which addresses a PSA request may connect to.

Staff are trusted with their tenant's settings, not with the network piadesk runs in: a PSA
address typed by staff must not reach the cloud metadata service, the database, the cache or
anything else on a private network (SSRF). The check is made **where the socket is opened**
(``GuardedAdapter``, mounted by ``psa.http.PSASession`` on every PSA session): the host is
resolved once, every address it resolves to is vetted, and the connection is made to a vetted
address, so neither DNS rebinding (a name that answers differently at save and at connect
time) nor a redirect or a vendor-supplied URL (Autotask's zone, ConnectWise's codebase) can
slip past a check made earlier. TLS still verifies the certificate and sends SNI for the host
name, since only the TCP connection is made to the resolved address.

Refused: loopback, private (RFC 1918), link-local, shared address space (CGNAT, 100.64/10),
unique-local IPv6, multicast, unspecified, reserved and documentation ranges (everything
``ipaddress`` does not call global), the same addresses written as IPv4-mapped, 6to4, Teredo or
NAT64 IPv6, and the cloud metadata names and addresses (the latter even inside an allowed
network). Operators allow an on-premises PSA with ``PIADESK_PSA_ALLOWED_NETWORKS`` (CIDRs);
the sandbox and the tests allow loopback that way.

No maintained library does this for requests with urllib3 2 (``advocate`` pins urllib3 1 and
is unmaintained), so it is these few lines over urllib3's own connection classes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services, by name and by address: never, whatever is allowed.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IPv6
    )
)
ALLOW_SETTING = "PIADESK_PSA_ALLOWED_NETWORKS"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(Exception):
    """piadesk's outbound policy refuses the address (nothing was sent)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(
            f"piadesk does not connect to {host}: {reason}. If this PSA runs in your own "
            f"network, the operator can allow its network with {ALLOW_SETTING}."
        )
        self.host = host
        self.reason = reason


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (e.g. "a private address"), or None when it is."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if (inner := embedded_ipv4(ip)) is not None:
        kind = address_kind(inner)
        return f"{kind} (written as IPv6)" if kind else None
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip in _CGNAT, "a shared (carrier-grade NAT) address"),
        (ip.is_multicast, "a multicast address"),
        (
            isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"),
            "a unique-local address",
        ),
        (any(ip in net for net in _RFC1918), "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


@dataclass(frozen=True)
class OutboundPolicy:
    """Public addresses only, plus the networks the operator allows."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_networks(cls, networks: Iterable[str]) -> OutboundPolicy:
        """Raises ``ValueError`` for a value that is not a network (CIDR) or address."""
        return cls(tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks))

    @classmethod
    def from_settings(cls) -> OutboundPolicy:
        from django.conf import settings

        if not settings.configured:
            return cls()
        return cls.from_networks(getattr(settings, ALLOW_SETTING, ()))

    def address_refusal(self, ip: IPAddress) -> str | None:
        """What ``ip`` is when refused ("a private address"), or None when allowed."""
        inner = embedded_ipv4(ip)
        if ip in METADATA_ADDRESSES or inner in METADATA_ADDRESSES:
            return "a cloud metadata address"
        candidates = [ip] if inner is None else [ip, inner]
        if any(c in net for c in candidates for net in self.allowed_networks):
            return None
        return address_kind(ip)

    def host_refusal(self, host: str) -> str | None:
        """Refusals decided from the name alone (metadata names, refused literal addresses)."""
        name = host.strip("[]").rstrip(".").lower()
        if name in METADATA_NAMES:
            return "it is a cloud metadata service"
        try:
            ip = ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            return None
        kind = self.address_refusal(ip)
        return f"it is {kind}" if kind else None

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """``getaddrinfo`` results for ``host``, every one vetted: ``OutboundRefused`` when any
        address is refused (a name must not mix public and private answers), and
        ``socket.gaierror`` when it does not resolve."""
        if reason := self.host_refusal(host):
            raise OutboundRefused(host, reason)
        infos = getaddrinfo(_lookup_name(host), port, 0, socket.SOCK_STREAM)
        self._vet(host, infos)
        return infos

    def _vet(self, host: str, infos: list[tuple[Any, ...]]) -> None:
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if kind := self.address_refusal(ip):
                raise OutboundRefused(host, f"it resolves to {ip}, {kind}")

    def check_host(self, host: str) -> str | None:
        """The refusal message for ``host`` as a form would show it, or None (also when it
        does not resolve now: that is said when connecting). Inside ``names_resolved_ahead``
        the name's answer is the one looked up there (no DNS while a transaction is open)."""
        answer = (_answers_ahead.get() or {}).get(_lookup_name(host))
        try:
            if answer is None:
                self.resolve(host, 443)
            elif reason := self.host_refusal(host):
                raise OutboundRefused(host, reason)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                self._vet(host, answer)
        except OutboundRefused as exc:
            return str(exc)
        except (OSError, UnicodeError):
            return None
        return None


def getaddrinfo(*args: Any) -> list[tuple[Any, ...]]:
    """The resolver (a seam for tests, which fake DNS answers)."""
    return socket.getaddrinfo(*args)


def _lookup_name(host: str) -> str:
    return host.strip("[]")


# What ``names_resolved_ahead`` looked up: the name's getaddrinfo answer, or the error it
# raised. Read by ``check_host`` only: the connection itself always resolves again.
_answers_ahead: ContextVar[dict[str, list[tuple[Any, ...]] | BaseException] | None] = ContextVar(
    "piadesk_outbound_answers_ahead", default=None
)


@contextmanager
def names_resolved_ahead(hosts: Iterable[str]) -> Iterator[None]:
    """Look ``hosts`` up now, so that ``check_host`` inside the block answers without DNS.

    A save page validates and saves in one database transaction (Django admin's
    ``changeform_view``); a resolver that takes seconds to answer would hold that transaction,
    its connection and its row locks open for as long. The page resolves the names it was sent
    before the transaction begins and the checks inside use those answers.
    """
    answers: dict[str, list[tuple[Any, ...]] | BaseException] = {}
    for host in hosts:
        name = _lookup_name(host)
        if name in answers or not name:
            continue
        try:
            answers[name] = getaddrinfo(name, 443, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            answers[name] = exc
    token = _answers_ahead.set(answers)
    try:
        yield
    finally:
        _answers_ahead.reset(token)


# --- urllib3 / requests plumbing -------------------------------------------------------------
class _GuardedConnectionMixin:
    """Resolve, vet, then connect to a vetted address (``_new_conn`` is where urllib3 opens
    the socket for both plain and TLS connections; TLS wraps it afterwards with the host
    name for SNI and certificate checks)."""

    policy: ClassVar[OutboundPolicy] = OutboundPolicy()

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        try:
            infos = self.policy.resolve(conn._dns_host, conn.port)
        except socket.gaierror as exc:
            raise NameResolutionError(conn.host, conn, exc) from exc
        error: OSError | None = None
        for info in infos:
            try:
                return create_connection(
                    (str(info[4][0]), conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
                ) from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections obey ``policy`` (mount it for http and https)."""

    def __init__(self, policy: OutboundPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        attrs = {"policy": self.policy}
        http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attrs)
        https_conn = type(
            "GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attrs
        )
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type(
                "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
            ),
        }
