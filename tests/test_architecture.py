"""The import directions docs/architecture.md describes, checked on the code.

Every import is read (module level and inside functions) with ``ast``; a dependency that goes
the wrong way fails here with the file and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(package: str) -> list[tuple[str, str]]:
    """(file, imported module) for every import in ``package`` (a dotted name)."""
    found: list[tuple[str, str]] = []
    base = ROOT.joinpath(*package.split("."))
    module = base.with_suffix(".py")
    paths = [module] if module.exists() else sorted(base.rglob("*.py"))
    assert paths, f"no such package: {package}"  # a renamed package must not pass silently
    for path in paths:
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            found.extend((str(path.relative_to(ROOT)), name) for name in names)
    return found


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path} imports {name}"
        for path, name in imports_of(package)
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    ]


def test_psa_does_not_know_piadesk_or_timelogging():
    # The vendor layer takes plain dataclasses and returns results or errors: no ORM objects,
    # no admin, no settings pages. (The sandbox, a stand-in PSA, is held to the same rule.)
    assert offending("psa", ("timelogging", "piadesk")) == []


def test_the_domain_does_not_import_its_callers():
    # Models, services and selectors are called by the admin, the API, forms, tasks and
    # commands; never the other way round.
    callers = (
        "timelogging.admin",
        "timelogging.api",
        "timelogging.forms",
        "timelogging.tasks",
        "timelogging.management",
        "piadesk",
    )
    for package in ("timelogging.models", "timelogging.services", "timelogging.selectors"):
        assert offending(package, callers) == [], package


def test_models_do_not_import_services_or_selectors():
    forbidden = ("timelogging.services", "timelogging.selectors")
    assert offending("timelogging.models", forbidden) == []


def test_the_api_and_the_admin_do_not_import_each_other():
    assert offending("timelogging.api", ("timelogging.admin",)) == []
    assert offending("timelogging.admin", ("timelogging.api",)) == []


def test_the_check_sees_imports_inside_functions(tmp_path, monkeypatch):
    # Guards the checker itself: a lazy import counts as much as a module-level one.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("def f():\n    from timelogging.admin import x\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert offending("pkg", ("timelogging.admin",)) == ["pkg/a.py imports timelogging.admin"]
