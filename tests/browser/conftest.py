"""Browser tests: Playwright for Python driving Debian's Chromium (no browser download).

Each test gets a logged-in page on the live server and a ``shot(name)`` helper that saves a
screenshot of every step under ``test-artifacts/<test>/`` (``PIADESK_TEST_ARTIFACTS`` to
put them elsewhere). They are kept, passed or failed: a person reviewing a change looks at the
pages it shows, and a failed test adds a last shot of the page as it was at the failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

ARTIFACTS = Path(
    os.environ.get("PIADESK_TEST_ARTIFACTS") or Path(settings.BASE_DIR) / "test-artifacts"
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine's network is closed: without these Chromium keeps trying to phone home.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    missing = not Path(CHROMIUM).exists()
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = True
    if not missing:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(
            "Browser tests need Debian's chromium and the playwright package; .ci/run "
            "installs them."
        )
    skip = pytest.mark.skip(reason="chromium or playwright not installed (see README)")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.failed_call = report.failed
    return report


@pytest.fixture
def shots(request):
    """``shot(name)`` saves a screenshot of the current page (kept; see the module
    docstring)."""
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    pages = []

    def shot(name: str, page=None) -> None:
        page = page or pages[-1]
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(folder / f"{len(list(folder.iterdir())):02d}-{name}.png"), full_page=True
        )

    shot.pages = pages
    yield shot
    if getattr(request.node, "failed_call", False) and pages:
        try:
            shot("at-failure")
        except Exception:  # the page may be gone; keep what we have
            pass


def logged_in_page(context, live_server, shots, *, username="admin", password="password"):
    """A new page of ``context`` logged into the admin (the fixture ``admin_user``'s login by
    default), its screenshots taken by ``shots``."""
    page = context.new_page()
    page.set_default_timeout(15_000)
    shots.pages.append(page)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page


@pytest.fixture
def admin_page(browser, live_server, admin_user, shots):
    """A browser page logged into the admin as a superuser."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    yield logged_in_page(context, live_server, shots)
    context.close()


@pytest.fixture
def bare_admin_page(browser, live_server, admin_user, shots):
    """The same without JavaScript: what the pages must still do on their own."""
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1300, "height": 900}
    )
    yield logged_in_page(context, live_server, shots)
    context.close()
