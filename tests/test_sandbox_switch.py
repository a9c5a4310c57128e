"""PIADESK_SANDBOX off (production): the sandbox app is not installed at all.

The test suite runs with the sandbox on (tests/settings.py), so the "off" side runs piadesk's own
settings in a child process, on a throw-away SQLite database: the app registry cannot be
rebuilt in-process without the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_MODELS = (
    "sandbox_sandboxaccount",
    "sandbox_sandboxmember",
    "sandbox_sandboxticket",
    "sandbox_sandboxtimeentry",
    "sandbox_sandboxfaults",
)

# What the child reports: the tables `migrate` made, whether the app is installed, what
# /sandbox/ answers, and what `manage.py demo` says.
CHILD = """
import io, json
import django
django.setup()
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

call_command("migrate", interactive=False, verbosity=0)
try:
    call_command("demo", "--setup-only", stdout=io.StringIO())
    demo = "ran"
except CommandError as error:
    demo = str(error)
client = Client()
print(json.dumps({
    "tables": connection.introspection.table_names(),
    "installed": apps.is_installed("psa.sandbox"),
    "sandbox_page": client.get("/sandbox/").status_code,
    "sandbox_api": client.get("/sandbox/connectwise/login/companyinfo/demo").status_code,
    "demo": demo,
}))
"""


def run_with_sandbox_off(tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "piadesk.settings",
        "DEBUG": "1",
        "PIADESK_SANDBOX": "0",
        "PIADESK_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production-like.sqlite3'}",
        "PIADESK_ENCRYPTION_KEYS": settings.PIADESK_ENCRYPTION_KEYS[0],
        "LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_with_the_sandbox_off_migrate_makes_no_sandbox_tables_and_serves_no_sandbox(tmp_path):
    report = run_with_sandbox_off(tmp_path)

    assert report["installed"] is False
    # migrate did run (piadesk's own tables exist), and made none of the sandbox's.
    assert "timelogging_timeentry" in report["tables"]
    assert [t for t in report["tables"] if t.startswith("sandbox_")] == []
    assert report["sandbox_page"] == 404
    assert report["sandbox_api"] == 404
    # The demo says what it needs instead of failing on the sandbox's models.
    assert report["demo"] == "The demo needs the PSA sandbox: set PIADESK_SANDBOX=1."


@pytest.mark.django_db
def test_with_the_sandbox_on_its_tables_exist():
    # The other side of the switch (the suite runs with it on), and proof that the names
    # checked above are the sandbox's real table names.
    tables = connection.introspection.table_names()
    assert set(SANDBOX_MODELS) <= set(tables)
