"""The README is true: its runnable commands run, and its settings table lists every setting.

Shell blocks preceded by ``<!-- runnable -->`` are run as written (bash, from the checkout)
on a fresh database: a new SQLite file and ``PIADESK_VAR_DIR`` in a temporary directory.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
RUNNABLE = re.compile(r"<!-- runnable -->\n```sh\n(.*?)```", re.S)


def runnable_blocks() -> list[str]:
    return RUNNABLE.findall(README)


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def test_the_readme_marks_runnable_blocks():
    blocks = runnable_blocks()
    assert blocks, "no <!-- runnable --> block in README.md"
    assert any("grant_role" in block for block in blocks)


def _make_env(tmp_path: Path) -> dict[str, str]:
    """make must reuse the virtualenv running this test, not build another."""
    venv = Path(sys.prefix)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stamp = venv / f".installed-{version}"
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        pytest.fail(f"{venv} is not set up by make for this pyproject.toml: run `make setup`")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PIADESK_", "PYTEST_", "SECRET_KEY", "DEBUG"))
    }
    env.update(
        VENV=os.path.relpath(venv, ROOT),
        PYTHON=getattr(sys, "_base_executable", sys.executable),
        DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        PIADESK_VAR_DIR=str(tmp_path / "var"),
        MAKEFLAGS="",
    )
    return env


@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_runnable_block_runs_as_written_on_a_fresh_database(index, tmp_path):
    block = runnable_blocks()[index]
    env = _make_env(tmp_path)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"{block}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    if "grant_role jane" in block:
        with sqlite3.connect(tmp_path / "fresh.sqlite3") as db:
            groups = db.execute(
                "SELECT g.name FROM auth_user u JOIN auth_user_groups ug ON ug.user_id = u.id "
                "JOIN auth_group g ON g.id = ug.group_id WHERE u.username = 'jane'"
            ).fetchall()
        assert groups == [("MSP staff",)]
    if "generate_encryption_key" in block:
        assert re.search(r"^[A-Za-z0-9_-]{43}=$", result.stdout, re.M)


def settings_read_from_the_environment() -> set[str]:
    source = (ROOT / "piadesk" / "settings.py").read_text()
    return set(re.findall(r"(?:env_\w+|os\.environ\.get)\(\s*\"([A-Z][A-Z0-9_]+)\"", source))


def test_the_configuration_table_lists_every_setting_read():
    names = settings_read_from_the_environment()
    assert {"DEBUG", "TIME_ZONE", "LOG_LEVEL", "PIADESK_VAR_DIR", "ALLOWED_HOSTS"} <= names
    table = section("Configuration")
    missing = sorted(name for name in names if f"`{name}`" not in table)
    assert missing == []


def test_the_production_environment_example_sets_what_production_requires():
    example = (ROOT / "deploy" / "piadesk.env.example").read_text()
    keys = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert keys["DEBUG"] == "false"
    for name in ("SECRET_KEY", "PIADESK_ENCRYPTION_KEYS", "ALLOWED_HOSTS", "DATABASE_URL"):
        assert keys.get(name), name
    assert keys["DATABASE_URL"].startswith("postgres://")
    unknown = sorted(
        set(keys) - settings_read_from_the_environment() - {"PROMETHEUS_MULTIPROC_DIR"}
    )
    assert unknown == []
