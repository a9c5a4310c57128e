"""``make bench``: piadesk's performance as ratios to floors measured in the same run.

Ingest: piadesk's ``POST /api/v1/automation-runs/`` and the floor (``bench/floor``: the least a
durable ingest can do for the same contract) are served side by side by gunicorn ``-w 4`` on
PostgreSQL over the unix socket, and loaded in turn (floor, piadesk, floor, piadesk) by
``wrk -t2 -c8`` with ``bench/ingest.lua``. The ratio of the best requests/s is the figure.

Dispatch: ``manage.py bench_dispatch`` drains N queued entries with one ``qcluster`` of W
workers against ``bench/psa_standin.py`` answering after L ms; the steady rate is divided by
the W / L limit. The full run also drains 1,000 and then 20,000 entries at L = 1 ms: the cost
per entry (CPU and time) of the long drain over the short one, and the workers' memory from
10 % to 90 % of the long one, must stay flat.

Machines are shared and noisy: absolute figures move, the ratios are what to compare. Needs
PostgreSQL (``--db``, default the unix socket as user postgres) and Debian's ``wrk``.
Creates and drops databases named ``piadesk_bench_*`` (``--db-prefix`` / ``BENCH_DB_PREFIX``
chooses another prefix, so that two checkouts can measure on one server at once).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
GUNICORN = str(Path(PY).with_name("gunicorn"))

# The targets (#13): ratios, printed, never asserted in timed tests.
INGEST_RATIO_TARGET = 0.8
INGEST_P99_TARGET_MS = 50
DISPATCH_RATIO_TARGET = 0.9
REQUESTS_PER_ENTRY_TARGET = 1.05
# CPU per entry at L = 1 ms (W = 2, 1,000 entries) before the dispatch work of #13, measured by
# this script on the 2-core machine of the README: 35.8 and 33.1 ms in two runs, as the issue's
# 34 ms (22-23 ms with 400 entries: django-q2's monitor then cost more with every result it
# kept). The target is half of it or less.
CPU_BASELINE_MS = 34
# CPU time is not comparable across machines: the target is scaled by this machine's speed,
# from a fixed pure-Python calibration (``calibration_seconds``). The machine of the 34 ms took
# about 0.53 s for it — derived, not measured there: the same version (36b1f47) used 16.7 ms
# per entry there and 36.5 ms on a machine whose calibration took 1.155 s.
CALIBRATION_REFERENCE_S = 0.53
DRAIN_FLATNESS_TARGET = 1.2  # cost per entry, 20,000 entries over 1,000
DRAIN_RSS_GROWTH_TARGET = 1.1  # workers' RSS at 90 % of the long drain over that at 10 %
DRAIN_SHORT, DRAIN_LONG = 1000, 20000


# --- plumbing ---------------------------------------------------------------------------------
def calibration_seconds() -> float:
    """The CPU time of a fixed pure-Python loop, the best of three (see CALIBRATION_REFERENCE_S)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        sum(i * i for i in range(10**7))
        best = min(best, time.process_time() - start)
    return best


def server_environment() -> dict[str, str]:
    """The environment of the servers and commands measured: production settings (DEBUG off)
    with throwaway secrets, on plain HTTP."""
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "DEBUG": "0",
        # A random one: manage.py check refuses a short or simple key when DEBUG is off.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PIADESK_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on loopback, as behind the TLS-terminating proxy of production: without it
        # every request is a 301 to https:// (and the readiness probe follows it into TLS).
        "SECURE_SSL_REDIRECT": "0",
        "CONNECTWISE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def db_url(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def admin_sql(base: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(db_url(base, "postgres"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def recreate_db(base: str, name: str, template: str | None = None) -> None:
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', create)


def drop_db(base: str, name: str) -> None:
    admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(cmd: list[str], *, env: dict[str, str], cwd: Path = ROOT) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - our own local server
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing answered at {url} within {timeout:.0f} s")


def start(cmd: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "a") as out:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


# --- ingest -----------------------------------------------------------------------------------
@dataclass
class WrkRun:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


@dataclass
class Side:
    name: str
    runs: list[WrkRun] = field(default_factory=list)

    @property
    def best(self) -> WrkRun:
        return max(self.runs, key=lambda r: r.rps)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def parse_wrk(output: str) -> WrkRun:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
        output,
    )
    return WrkRun(
        rps=rps,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(x) for x in errors.groups()) if errors else 0,
    )


def wrk(url: str, key: str, seconds: int, *, connections: int = 8) -> WrkRun:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["-s", str(BENCH / "ingest.lua"), url, "--", key]
    return parse_wrk(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def bench_ingest(args: argparse.Namespace, env: dict[str, str], logdir: Path) -> list[Side]:
    base = args.db
    floor_env = {**env, "DATABASE_URL": db_url(base, f"{args.db_prefix}_floor")}
    recreate_db(base, f"{args.db_prefix}_floor")
    floor_dir = BENCH / "floor"
    run([PY, "manage.py", "migrate", "-v0"], env=floor_env, cwd=floor_dir)
    # Hex, so that it never starts with "-" (argparse would take it for an option).
    floor_key = secrets.token_hex(24)
    run([PY, "manage.py", "floor_seed", floor_key], env=floor_env, cwd=floor_dir)

    app_env = {
        **env,
        "DATABASE_URL": db_url(base, f"{args.db_prefix}_ingest"),
        # One key sends thousands of runs a minute here: above its rate they would be 429s
        # (cheap answers, not ingests). The throttle still counts every request.
        "PIADESK_API_RATE_INGEST": "1000000/minute",
    }
    recreate_db(base, f"{args.db_prefix}_ingest", template=f"{args.db_prefix}_template")
    app_key = run([PY, "manage.py", "bench_ingest_seed"], env=app_env).strip()

    servers = []
    sides = {"floor": Side("floor"), "piadesk": Side("piadesk")}
    urls = {}
    try:
        for name, cwd, wsgi, server_env in (
            ("floor", floor_dir, "wsgi:application", floor_env),
            ("piadesk", ROOT, "piadesk.wsgi:application", app_env),
        ):
            port = free_port()
            cmd = [GUNICORN, "-w", "4", "-b", f"127.0.0.1:{port}", wsgi]
            servers.append(start(cmd, env=server_env, cwd=cwd, log=logdir / f"gunicorn-{name}.log"))
            urls[name] = f"http://127.0.0.1:{port}/api/v1/automation-runs/"
            wait_http(f"http://127.0.0.1:{port}/")
        keys = {"floor": floor_key, "piadesk": app_key}
        for name in sides:  # warm-up: imports, connections, caches of every worker
            wrk(urls[name], keys[name], 2)
        for _ in range(args.rounds):
            for name, side in sides.items():
                side.runs.append(wrk(urls[name], keys[name], args.seconds))
                print(f"  ingest {name}: {side.runs[-1]}", file=sys.stderr)
    finally:
        for server in servers:
            stop(server)
    return list(sides.values())


# --- dispatch ---------------------------------------------------------------------------------
def bench_dispatch(
    args: argparse.Namespace,
    env: dict[str, str],
    logdir: Path,
    *,
    workers: int,
    latency_ms: float,
    entries: int,
) -> dict:
    base = args.db
    recreate_db(base, f"{args.db_prefix}_dispatch", template=f"{args.db_prefix}_template")
    port = free_port()
    standin = start(
        [PY, str(BENCH / "psa_standin.py"), "--port", str(port), "--latency-ms", str(latency_ms)],
        env=env,
        cwd=ROOT,
        log=logdir / "psa-standin.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/stats")
        out = run(
            [
                PY,
                "manage.py",
                "bench_dispatch",
                f"--entries={entries}",
                f"--workers={workers}",
                f"--psa-url=http://127.0.0.1:{port}",
                f"--latency-ms={latency_ms}",
                f"--log={logdir / 'qcluster.log'}",
                f"--timeout={max(600, entries // 10)}",
            ],
            env={
                **env,
                "DATABASE_URL": db_url(base, f"{args.db_prefix}_dispatch"),
                # The stand-in listens on loopback, which the outbound policy refuses otherwise.
                "PIADESK_PSA_ALLOWED_NETWORKS": "127.0.0.1/32",
            },
        )
    finally:
        stop(standin)
    result = json.loads(out.strip().splitlines()[-1])
    print(f"  dispatch W={workers} L={latency_ms:g} ms N={entries}: {result}", file=sys.stderr)
    return result


# --- the table --------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def report(sides: list[Side] | None, dispatches: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"piadesk benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end, CPU calibration "
        f"{args.calibration:.2f} s ({args.calibration / CALIBRATION_REFERENCE_S:.2f}x the "
        "reference's). Absolute figures depend on the machine and its load: compare the ratios.",
        "",
    ]
    if sides:
        floor, app = sides
        lines += [
            f"Ingest: POST /api/v1/automation-runs/, gunicorn -w 4, wrk -t2 -c8 "
            f"-d{args.seconds}s, PostgreSQL over {args.db}, floor and piadesk alternated "
            f"{args.rounds}x",
            "",
            "| | requests/s (each run) | best | p50 | p99 | non-2xx / socket errors |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for side in sides:
            best = side.best
            each = " / ".join(f"{r.rps:.0f}" for r in side.runs)
            bad = sum(r.non_2xx for r in side.runs), sum(r.errors for r in side.runs)
            lines.append(
                f"| {side.name} | {each} | {best.rps:.0f} | {best.p50_ms:.1f} ms | "
                f"{best.p99_ms:.1f} ms | {bad[0]} / {bad[1]} |"
            )
        ratio = app.best.rps / floor.best.rps
        p99 = app.best.p99_ms
        lines += [
            "",
            f"- ingest ratio piadesk / floor: {ratio:.2f}x   (target >= {INGEST_RATIO_TARGET}x: "
            f"{verdict(ratio >= INGEST_RATIO_TARGET)})",
            f"- piadesk p99 at c=8: {p99:.1f} ms   (target < {INGEST_P99_TARGET_MS} ms: "
            f"{verdict(p99 < INGEST_P99_TARGET_MS)}; the floor's: {floor.best.p99_ms:.1f} ms)",
            "",
        ]
    if dispatches:
        lines += [
            "Dispatch: N queued entries, one qcluster of W workers, a PSA stand-in answering "
            "after L ms; steady rate from 10 % to 90 % posted",
            "",
            "| W | L | N | posted | entries/s | W/L | ratio | PSA requests/entry | duplicates "
            "| max in flight / cap | max requests/min / budget | CPU ms/entry | worker RSS MB "
            "10 % → 90 % |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for d in dispatches:
            psa = d["psa"]
            limit = d["workers"] / (d["latency_ms"] / 1000)
            cpu = f"{d['cpu_ms_per_entry']:.1f}" if d["cpu_ms_per_entry"] is not None else "-"
            rss = (
                f"{d['rss_mb_at_10']:.0f} → {d['rss_mb_at_90']:.0f}"
                if d["rss_mb_at_10"] is not None
                else "-"
            )
            lines.append(
                f"| {d['workers']} | {d['latency_ms']:g} ms | {d['entries']} | {d['posted']} | "
                f"{d['steady_rate']:.1f} | {limit:.0f} | {d['steady_rate'] / limit:.2f}x | "
                f"{psa['requests'] / d['entries']:.3f} | {psa['duplicate_creates']} | "
                f"{psa['max_in_flight']} / {d['max_concurrency']} | "
                f"{psa['max_requests_per_minute']} / {d['requests_per_minute_budget']} | "
                f"{cpu} | {rss} |"
            )
        lines.append("")
        for d in dispatches:
            psa = d["psa"]
            limit = d["workers"] / (d["latency_ms"] / 1000)
            per_entry = psa["requests"] / d["entries"]
            checks = [
                f"requests/entry {per_entry:.3f} (<= {REQUESTS_PER_ENTRY_TARGET}: "
                f"{verdict(per_entry <= REQUESTS_PER_ENTRY_TARGET)})",
                f"in flight {verdict(psa['max_in_flight'] <= d['max_concurrency'])}",
                "budget "
                + verdict(psa["max_requests_per_minute"] <= d["requests_per_minute_budget"]),
                "all posted once "
                + verdict(d["posted"] == d["entries"] and not psa["duplicate_creates"]),
            ]
            if d["latency_ms"] >= 50:
                ratio = d["steady_rate"] / limit
                checks.insert(
                    0,
                    f"ratio {ratio:.2f}x (target >= {DISPATCH_RATIO_TARGET}x: "
                    f"{verdict(ratio >= DISPATCH_RATIO_TARGET)})",
                )
            elif d["cpu_ms_per_entry"] is not None:
                cpu = d["cpu_ms_per_entry"]
                slower = args.calibration / CALIBRATION_REFERENCE_S
                target = CPU_BASELINE_MS / 2 * slower
                checks.insert(
                    0,
                    f"CPU {cpu:.1f} ms/entry (target <= {target:.1f}: half of the "
                    f"{CPU_BASELINE_MS} ms before #13, times {slower:.2f} for this machine's "
                    f"speed: {verdict(cpu <= target)})",
                )
            lines.append(
                f"- W={d['workers']} L={d['latency_ms']:g} ms N={d['entries']}: "
                + "; ".join(checks)
            )
        lines += drain_report(dispatches)
    return "\n".join(lines)


def drain_report(dispatches: list[dict]) -> list[str]:
    """The long drain against the short one at the same W and L: flat cost, flat memory."""
    by_size = {d["entries"]: d for d in dispatches if d["latency_ms"] < 50}
    short, long = by_size.get(DRAIN_SHORT), by_size.get(DRAIN_LONG)
    if short is None or long is None or not short["steady_rate"] or not long["steady_rate"]:
        return []
    time_ratio = short["steady_rate"] / long["steady_rate"]  # time per entry, long / short
    lines = [
        "",
        f"Drain: {DRAIN_LONG:,} queued entries against {DRAIN_SHORT:,} (W={long['workers']}, "
        f"L={long['latency_ms']:g} ms), cost per entry of the long one over the short one "
        f"(target <= {DRAIN_FLATNESS_TARGET}x)",
        "",
        f"- time per entry: {1000 / long['steady_rate']:.1f} / "
        f"{1000 / short['steady_rate']:.1f} ms = {time_ratio:.2f}x "
        f"({verdict(time_ratio <= DRAIN_FLATNESS_TARGET)})",
    ]
    if short["cpu_ms_per_entry"] and long["cpu_ms_per_entry"]:
        cpu_ratio = long["cpu_ms_per_entry"] / short["cpu_ms_per_entry"]
        lines.append(
            f"- CPU per entry: {long['cpu_ms_per_entry']:.1f} / "
            f"{short['cpu_ms_per_entry']:.1f} ms = {cpu_ratio:.2f}x "
            f"({verdict(cpu_ratio <= DRAIN_FLATNESS_TARGET)})"
        )
    if long["rss_mb_at_10"] and long["rss_mb_at_90"]:
        growth = long["rss_mb_at_90"] / long["rss_mb_at_10"]
        lines.append(
            f"- workers' memory (largest RSS) at 10 % / 90 % of the long drain: "
            f"{long['rss_mb_at_10']:.0f} → {long['rss_mb_at_90']:.0f} MB = {growth:.2f}x "
            f"(flat: <= {DRAIN_RSS_GROWTH_TARGET}x: {verdict(growth <= DRAIN_RSS_GROWTH_TARGET)})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="piadesk's performance against its floors")
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--db", default=os.environ.get("BENCH_DATABASE", "postgres://postgres@"))
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("BENCH_DB_PREFIX", "piadesk_bench"),
        help="names of the databases created and dropped (another checkout may be measuring)",
    )
    parser.add_argument("--only", choices=["ingest", "dispatch"], default=None)
    parser.add_argument(
        "--dispatch-plan",
        default="",
        help="dispatch runs instead of the default ones, e.g. 8:100:800,2:1:1000 (W:L ms:N)",
    )
    args = parser.parse_args()
    args.seconds = 4 if args.quick else 10
    args.calibration = calibration_seconds()  # first, before the servers load the machine
    args.rounds = 2

    if shutil.which("wrk") is None and args.only != "dispatch":
        sys.exit(
            "make bench needs wrk (HTTP load generator): on Debian/Ubuntu `apt-get install wrk`."
        )
    if not Path(GUNICORN).exists():
        sys.exit(f"{GUNICORN} is missing: run `make setup` (gunicorn is a pinned dependency).")
    try:
        admin_sql(args.db, "SELECT 1")
    except Exception as exc:  # noqa: BLE001 - say what to fix, whatever the driver raised
        sys.exit(f"cannot reach PostgreSQL at {args.db} ({exc}); set BENCH_DATABASE.")

    logdir = ROOT / "var" / "bench"
    logdir.mkdir(parents=True, exist_ok=True)
    env = server_environment()
    print("preparing databases (migrations)…", file=sys.stderr)
    recreate_db(args.db, f"{args.db_prefix}_template")
    run(
        [PY, "manage.py", "migrate", "-v0"],
        env={**env, "DATABASE_URL": db_url(args.db, f"{args.db_prefix}_template")},
    )
    sides = None
    dispatches: list[dict] = []
    try:
        if args.only in (None, "ingest"):
            sides = bench_ingest(args, env, logdir)
        if args.only in (None, "dispatch"):
            plan = (
                [(2, 100, 100), (8, 100, 200)]
                if args.quick
                else [(2, 100, 400), (8, 100, 800), (2, 1, DRAIN_SHORT), (2, 1, DRAIN_LONG)]
            )
            if args.dispatch_plan:
                plan = []
                for run_spec in args.dispatch_plan.split(","):
                    workers, latency, entries = (int(x) for x in run_spec.split(":"))
                    plan.append((workers, latency, entries))
            for workers, latency, entries in plan:
                dispatches.append(
                    bench_dispatch(
                        args, env, logdir, workers=workers, latency_ms=latency, entries=entries
                    )
                )
    finally:
        for name in ("floor", "ingest", "dispatch", "template"):
            drop_db(args.db, f"{args.db_prefix}_{name}")
    print(report(sides, dispatches, args))


if __name__ == "__main__":
    main()
