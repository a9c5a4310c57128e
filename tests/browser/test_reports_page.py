"""The Reports page in a real browser, light and dark: the charts take the admin's colours
(their text stays readable on a dark page), with screenshots of both as test artifacts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.browser.conftest import logged_in_page
from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    TenantFactory,
    TimeEntryFactory,
)
from timelogging.models import TimeEntry

pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.django_db(transaction=True)


def luminance(rgb: str) -> float:
    """Relative luminance (0 black … 1 white) of a computed "rgb(r, g, b)" colour."""
    r, g, b = (int(part) / 255 for part in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.fixture
def tenant():
    tenant = TenantFactory(name="Acme MSP")
    today = timezone.localdate()
    for i, (client, minutes, status) in enumerate(
        [("Contoso", 20, "posted"), ("Fabrikam", 45, "posted"), ("Contoso", 15, "failed")]
    ):
        run = AutomationRunFactory(
            tenant=tenant,
            client=ClientFactory(tenant=tenant, name=client, key=f"{client.lower()}-{i}"),
            automation=AutomationFactory(tenant=tenant, name="Reset password"),
        )
        start = timezone.make_aware(dt.datetime.combine(today, dt.time(9))) - dt.timedelta(days=i)
        TimeEntryFactory(run=run, tenant=tenant, minutes=minutes, start=start, status=status)
    return tenant


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_report_charts_follow_the_admins_colours(
    browser, live_server, admin_user, shots, tenant, scheme
):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme=scheme)
    try:
        page = logged_in_page(context, live_server, shots)
        page.goto(f"{live_server.url}{reverse('admin:reports')}?tenant={tenant.pk}")
        page.wait_for_selector("svg.piadesk-chart")
        shots(f"reports-{scheme}")
        colours = page.evaluate(
            """() => {
                const label = document.querySelector('svg.piadesk-chart text.label');
                const body = getComputedStyle(document.body);
                const probe = document.createElement('span');
                probe.style.color = 'var(--body-fg)';
                document.body.appendChild(probe);
                return {
                    label: getComputedStyle(label).fill,
                    bodyFg: getComputedStyle(probe).color,
                    background: body.backgroundColor,
                };
            }"""
        )
        # The chart's text is the page's own text colour, in either mode...
        assert colours["label"] == colours["bodyFg"]
        # ...so it stands out from the background: light on dark, dark on light.
        contrast = abs(luminance(colours["label"]) - luminance(colours["background"]))
        assert contrast > 0.5, colours
        if scheme == "dark":
            assert luminance(colours["background"]) < 0.2
        assert page.get_by_text("Entries not in the PSA", exact=True).is_visible()
        assert TimeEntry.objects.filter(status="failed").exists()
    finally:
        context.close()
