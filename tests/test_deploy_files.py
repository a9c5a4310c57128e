"""The examples in deploy/ are accepted by the tools that will read them, and do what the
README's "Production" section says they do.

- The systemd units pass ``systemd-analyze verify`` (unknown keys, bad values and missing
  executables are errors), with /srv/piadesk pointing at this checkout as installed.
- deploy/nginx.conf passes ``nginx -t`` and, run for real in front of a backend that echoes
  what it receives: port 80 redirects to HTTPS, HTTPS is proxied with ``X-Forwarded-Proto:
  https`` (what piadesk trusts, SECURE_PROXY_SSL_HEADER) whatever the client sent, and
  /metrics is refused to anyone but the host itself.

Both tools come from Debian (systemd, nginx); .ci/run installs nginx. A machine without
them skips these tests and says so.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------- systemd


def installed_unit(unit: Path) -> str:
    """The unit as it would be installed from this checkout: /srv/piadesk is this checkout."""
    text = unit.read_text()
    text = text.replace("/srv/piadesk/.venv", sys.prefix).replace("/srv/piadesk", str(ROOT))
    # The piadesk system user does not exist on a test machine; the unit's other settings do.
    return re.sub(r"^(User|Group)=.*$", r"\1=root", text, flags=re.M)


def verify(unit_dir: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", *sorted(str(p) for p in unit_dir.glob("*.service"))],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    assert {u.name for u in UNITS} == {"piadesk-web.service", "piadesk-worker.service"}
    for unit in UNITS:
        (tmp_path / unit.name).write_text(installed_unit(unit))
    result = verify(tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_verification_catches_a_broken_unit(tmp_path):
    """The check above can fail: a typo in a key and a missing program are reported."""
    text = installed_unit(DEPLOY / "piadesk-worker.service")
    text = text.replace("Restart=always", "Restrat=always").replace(
        f"{sys.prefix}/bin/python", "/nonexistent/python"
    )
    (tmp_path / "piadesk-worker.service").write_text(text)
    result = verify(tmp_path)
    assert "Restrat" in result.stderr
    assert result.returncode != 0 and "/nonexistent/python" in result.stderr


# ------------------------------------------------------------------------------------ nginx


class EchoHandler(BaseHTTPRequestHandler):
    """Stands in for gunicorn: answers every request with the path and headers it received."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "piadesk.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        # The test connects to 127.0.0.1: named so that requests can verify the certificate.
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("piadesk.example.com"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def nginx_site(tmp_path):
    """deploy/nginx.conf with this machine's ports and a self-signed certificate, inside the
    minimal main configuration that Debian's /etc/nginx/nginx.conf provides around a site."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    backend = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    cert, key = self_signed_certificate(tmp_path)

    site = (DEPLOY / "nginx.conf").read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{backend.server_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/letsencrypt/live/piadesk.example.com/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/piadesk.example.com/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        assert old in site, f"deploy/nginx.conf no longer has {old!r}; update this test"
        site = site.replace(old, new)
    # IPv6 may be off on a test machine; the IPv4 listeners carry the same configuration.
    site = re.sub(r"^\s*listen \[::\]:\d+.*$", "", site, flags=re.M)
    (tmp_path / "piadesk.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"""
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{}}
        http {{
            access_log off;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi;
            uwsgi_temp_path {tmp_path}/uwsgi;
            scgi_temp_path {tmp_path}/scgi;
            include {tmp_path}/piadesk.conf;
        }}
        """
    )
    command = [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    yield command, http_port, https_port, str(cert)
    subprocess.run([*command, "-s", "stop"], capture_output=True, timeout=30)
    backend.shutdown()


def test_the_nginx_example_is_valid_and_proxies_as_documented(nginx_site):
    command, http_port, https_port, cert = nginx_site
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    started = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr
    https = f"https://127.0.0.1:{https_port}"
    for _ in range(50):
        try:
            requests.get(https, verify=cert, timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.1)

    plain = requests.get(
        f"http://127.0.0.1:{http_port}/admin/?x=1",
        headers={"Host": "piadesk.example.com"},
        allow_redirects=False,
        timeout=5,
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://piadesk.example.com/admin/?x=1"

    # A client cannot make piadesk believe a plain request was HTTPS, or the reverse: the
    # header is nginx's own.
    proxied = requests.get(
        f"{https}/api/v1/automation-runs/",
        headers={"Host": "piadesk.example.com", "X-Forwarded-Proto": "http"},
        verify=cert,
        timeout=5,
    )
    assert proxied.status_code == 200
    received = {k.lower(): v for k, v in proxied.json()["headers"].items()}
    assert received["x-forwarded-proto"] == "https"
    assert received["host"] == "piadesk.example.com"
    assert received["x-forwarded-for"] == "127.0.0.1"
    assert proxied.json()["path"] == "/api/v1/automation-runs/"

    # /metrics is served to the host itself (Prometheus on the same machine) ...
    metrics = requests.get(f"{https}/metrics", verify=cert, timeout=5)
    assert metrics.status_code == 200 and metrics.json()["path"] == "/metrics"
    # ... and refused to any other address (127.0.0.2 is another source on the loopback).
    assert get_from("127.0.0.2", https_port, "/metrics") == 403
    assert get_from("127.0.0.2", https_port, "/healthz") == 200


def get_from(source: str, port: int, path: str) -> int:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, source_address=(source, 0), context=context, timeout=5
    )
    try:
        conn.request("GET", path, headers={"Host": "piadesk.example.com"})
        return conn.getresponse().status
    finally:
        conn.close()
