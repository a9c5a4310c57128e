"""Instructions per ingest, counted by valgrind: a figure that the machine's load cannot move.

``make bench`` measures requests/s, which on a shared 2-core machine moves by a third from one
run to the next; a change of a few percent in an ingest's cost is lost in it. This counts the
CPU instructions one ingest takes in-process (Django's WSGI handler called directly: no
gunicorn, no network, PostgreSQL's own work not counted) for the floor (``bench/floor``) and
for piadesk, under ``valgrind --tool=callgrind``. The same code and inputs give the same count
(within a fraction of a percent) whatever else the machine does, which makes it the figure to
compare before and after a change of the ingest path. Needs valgrind (Debian: ``apt-get install
valgrind``) and PostgreSQL as ``make bench``; takes about three minutes per side.

    .venv/bin/python bench/ingest_instructions.py            # both sides
    .venv/bin/python bench/ingest_instructions.py piadesk    # one side

Each side is counted twice, with 50 and with 350 measured requests after the same warm-up; the
difference over 300 requests is the cost of one (start-up, imports and the warm-up cancel out).
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  # bench/run.py: its database helpers

WARM_UP = 200
SHORT, LONG = 50, 350
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "piadesk_bench") + "_instr"


def environment(side: str, base: str) -> tuple[dict[str, str], Path, str, str]:
    """The server environment of ``side`` on a new database: (env, cwd, WSGI module, key)."""
    env = {
        **bench.server_environment(),
        # As make bench: one key sends them all (above its rate they would be cheap 429s).
        "PIADESK_API_RATE_INGEST": "1000000/minute",
        "DATABASE_URL": bench.db_url(base, f"{DB_PREFIX}_{side}"),
    }
    bench.recreate_db(base, f"{DB_PREFIX}_{side}")
    if side == "floor":
        cwd = bench.BENCH / "floor"
        bench.run([bench.PY, "manage.py", "migrate", "-v0"], env=env, cwd=cwd)
        key = base64.urlsafe_b64encode(os.urandom(24)).decode()
        bench.run([bench.PY, "manage.py", "floor_seed", key], env=env, cwd=cwd)
        return env, cwd, "wsgi", key
    bench.run([bench.PY, "manage.py", "migrate", "-v0"], env=env)
    key = bench.run([bench.PY, "manage.py", "bench_ingest_seed"], env=env).strip()
    return env, bench.ROOT, "piadesk.wsgi", key


def serve(wsgi_module: str, key: str, requests: int) -> None:
    """In this process: WARM_UP then ``requests`` ingests through the WSGI application (the
    body of bench/ingest.lua: a new run_id each, 50 clients, 20 automations)."""
    application = importlib.import_module(wsgi_module).application
    statuses: dict[str, int] = {}

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses[status] = statuses.get(status, 0) + 1

    for n in range(WARM_UP + requests):
        body = json.dumps(
            {
                "run_id": f"instr-{os.getpid()}-{n}",
                "automation": {"key": f"auto-{n % 20}", "name": f"Automation {n % 20}"},
                "client": {"key": f"client-{n % 50}", "name": f"Client {n % 50}"},
                "ticket_id": str(5000 + n % 3),
                "started_by": "jane@msp.example",
                "started_at": "2026-11-26T10:00:00Z",
                "completed_at": "2026-11-26T10:03:10Z",
                "summary": "benchmark run",
            },
            separators=(",", ":"),
        ).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/automation-runs/",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {key}",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        response = application(environ, start_response)
        b"".join(response)
        response.close()
    if set(statuses) != {"201 Created"}:
        sys.exit(f"not every ingest was a 201: {statuses}")


def count(side: str, base: str) -> float:
    env, cwd, wsgi_module, key = environment(side, base)
    totals = []
    try:
        for requests in (SHORT, LONG):
            cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
            cmd += [bench.PY, __file__, "--serve", wsgi_module, key, str(requests)]
            done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
            found = re.search(r"Collected : (\d+)", done.stderr)
            if done.returncode != 0 or found is None:
                sys.exit(f"{side}: valgrind failed:\n{done.stderr[-2000:]}")
            totals.append(int(found.group(1)))
    finally:
        bench.drop_db(base, f"{DB_PREFIX}_{side}")
    return (totals[1] - totals[0]) / (LONG - SHORT)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        sys.path.insert(0, os.getcwd())  # the floor's modules, or piadesk's
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("needs valgrind: on Debian/Ubuntu `apt-get install valgrind`.")
    base = os.environ.get("BENCH_DATABASE", "postgres://postgres@")
    sides = sys.argv[1:] or ["floor", "piadesk"]
    figures = {side: count(side, base) for side in sides}
    for side, instructions in figures.items():
        print(f"{side}: {instructions / 1e6:.2f} M instructions per ingest")
    if len(figures) == 2:
        print(f"piadesk / floor: {figures['piadesk'] / figures['floor']:.2f}")


if __name__ == "__main__":
    main()
