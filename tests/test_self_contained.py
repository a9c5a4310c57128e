"""The repository stands alone: nothing in it reads or cites files outside it.

A fresh clone has no ``shared/`` folder beside it (issue 10); the vendor notes the backends
cite are ``docs/vendors.md``, and the schemas the contract tests read are in ``tests/psa/specs``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("piadesk", "timelogging", "psa", "tests", "docs", ".ci")
OUTSIDE = re.compile(r"psa-vendors\.md|shared/docs|\.\./shared|vendor-specs/|/work/shared")


def _files():
    for name in SOURCE_DIRS:
        for path in sorted((ROOT / name).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".md", ".json", ".html", ""}:
                if path.name != Path(__file__).name and "__pycache__" not in path.parts:
                    yield path
    yield ROOT / "README.md"
    yield ROOT / "Makefile"


def test_no_file_refers_to_documents_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in _files()
        for match in OUTSIDE.finditer(path.read_text(errors="replace"))
    ]
    assert offenders == []


def test_documents_cited_by_the_backends_exist():
    cited = set()
    for path in (ROOT / "psa").rglob("*.py"):
        cited.update(re.findall(r"\bdocs/[\w.-]+\.md\b", path.read_text()))
    assert "docs/vendors.md" in cited
    missing = [doc for doc in sorted(cited) if not (ROOT / doc).is_file()]
    assert missing == []
