"""Every ``# type: ignore`` names its error code and says why (engineering rule; see
pyproject.toml, [tool.mypy]). mypy enforces the code (``ignore-without-code``) and reports
ignores that no longer silence anything (``warn_unused_ignores``); the reason is checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("piadesk", "psa", "timelogging", "tests")
IGNORE = re.compile(r"#\s*type:\s*ignore")
# "# type: ignore[code, code]  # why", the reason on the same line.
WELL_FORMED = re.compile(r"#\s*type:\s*ignore\[[a-z-]+(?:,\s*[a-z-]+)*\]\s+#\s*\S")


def type_ignores() -> list[tuple[str, int, str]]:
    found = []
    for package in CHECKED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts or path == Path(__file__).resolve():
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if IGNORE.search(line):
                    found.append((str(path.relative_to(ROOT)), number, line.strip()))
    return found


def test_every_type_ignore_has_a_code_and_a_reason():
    bad = [f"{path}:{number}: {line}" for path, number, line in type_ignores()]
    bad = [b for b in bad if not WELL_FORMED.search(b)]
    assert bad == [], "write `# type: ignore[code]  # why` on:\n" + "\n".join(bad)


def test_the_check_tells_good_from_bad():
    assert WELL_FORMED.search("x = f()  # type: ignore[attr-defined]  # set by the middleware")
    assert WELL_FORMED.search("x = f()  # type: ignore[misc, valid-type]  # a dynamic base")
    assert not WELL_FORMED.search("x = f()  # type: ignore[attr-defined]")
    assert not WELL_FORMED.search("x = f()  # type: ignore  # no code")
    assert not WELL_FORMED.search("x = f()  # type: ignore")
