"""Bar charts as inline SVG, drawn on the server.

The admin pages stay self-contained: no chart library to download, no CDN, nothing to run in
the browser, and the chart is in the HTML (it prints, and tests can read it). Every label is
escaped (client and automation names come from the automation service).

Axes go up in round steps (1, 2 or 5 × 10ⁿ; whole numbers for counts). Text and grid lines
take the admin's colour variables (``--body-fg``, ``--body-quiet-color``, ``--hairline-color``)
through their classes (``label``, ``quiet``, ``grid``; the page's style sheet maps them), so
that the charts read well in the admin's dark mode too; the presentation attributes are the
fallback. A unit given as "run|runs" is singular for exactly 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Django admin's own blues first, then colours that stay apart for colour-blind readers.
PALETTE = ("#417690", "#e8a33d", "#79aec8", "#ba2121", "#5b8a3c", "#8e6bb0")
FONT = 'font-family="-apple-system, Segoe UI, Roboto, sans-serif" font-size="11"'


def nice_step(value: float, *, whole: bool = False) -> float:
    """The round step (1, 2 or 5 × 10^n) at or above ``value``; at least 1 when ``whole``."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    step = next(m * magnitude for m in (1, 2, 5, 10) if value <= m * magnitude * (1 + 1e-9))
    return max(step, 1.0) if whole else step


def axis_ticks(maximum: float, *, whole: bool = False, target: int = 4) -> list[float]:
    """Round values from 0 to at or above ``maximum``, about ``target`` steps apart."""
    step = nice_step(maximum / target, whole=whole)
    count = max(1, math.ceil(maximum / step - 1e-9))
    return [round(step * i, 10) for i in range(count + 1)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.1f}"


def _tick(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:,.{decimals}f}"


def with_unit(value: float, unit: str) -> str:
    """ "1 run", "2 runs", "2.5 h": ``unit`` is "singular|plural", or one word for both."""
    one, _, many = unit.partition("|")
    return f"{_number(value)} {one if value == 1 or not many else many}"


def _unit_title(unit: str) -> str:
    return unit.rpartition("|")[2]


def column_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    unit: str,
    whole: bool = False,
    width: int = 760,
    height: int = 260,
) -> SafeString:
    """Vertical bars, one per label, stacked when there are several series. ``whole``: the
    values are counts (ticks on whole numbers)."""
    left, right, top, bottom = 52, 10, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    ticks = axis_ticks(max(totals, default=0), whole=whole)
    ceiling = ticks[-1]
    step = ticks[1] - ticks[0]
    parts: list[str] = []
    for value in ticks:  # gridlines and their values
        y = top + plot_h - plot_h * value / ceiling
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
                '<text class="quiet" x="{}" y="{}" text-anchor="end" fill="#666">{}</text>',
                left,
                width - right,
                f"{y:.1f}",
                f"{y:.1f}",
                left - 6,
                f"{y + 4:.1f}",
                _tick(value, step),
            )
        )
    slot = plot_w / max(1, len(labels))
    bar_w = max(1.0, slot * 0.7)
    every = max(1, math.ceil(len(labels) / 16))  # at most ~16 labels under the axis
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        base = float(top + plot_h)
        for s, (name, values) in enumerate(series):
            h = plot_h * values[i] / ceiling
            if h <= 0:
                continue
            base -= h
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}{}: {}</title></rect>",
                    f"{x:.1f}",
                    f"{base:.1f}",
                    f"{bar_w:.1f}",
                    f"{h:.1f}",
                    PALETTE[s % len(PALETTE)],
                    label,
                    f" – {name}" if len(series) > 1 else "",
                    with_unit(values[i], unit),
                )
            )
        if i % every == 0:
            parts.append(
                format_html(
                    '<text class="label" x="{}" y="{}" text-anchor="middle" fill="#333">{}</text>',
                    f"{x + bar_w / 2:.1f}",
                    top + plot_h + 16,
                    label,
                )
            )
    if len(series) > 1:
        parts.append(_legend([name for name, _ in series], x=left, y=height - 8))
    parts.append(
        format_html(
            '<text class="quiet" x="{}" y="{}" fill="#666">{}</text>',
            left,
            top - 10,
            _unit_title(unit),
        )
    )
    return _svg(title, width, height, parts)


def bar_list_chart(
    *,
    title: str,
    items: Sequence[tuple[str, float]],
    unit: str,
    width: int = 760,
    label_width: int = 220,
) -> SafeString:
    """Horizontal bars, one per item, largest first as given: rankings and breakdowns."""
    row_h, top = 22, 6
    height = top * 2 + row_h * max(1, len(items))
    plot_w = width - label_width - 70
    ceiling = max((value for _, value in items), default=0) or 1
    parts: list[str] = []
    for i, (label, value) in enumerate(items):
        y = top + row_h * i
        w = plot_w * value / ceiling
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(
            format_html(
                '<text class="label" x="{}" y="{}" text-anchor="end" fill="#333">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title>'
                '</rect><text class="quiet" x="{}" y="{}" fill="#666">{}</text>',
                label_width - 8,
                y + 15,
                short,
                label_width,
                y + 3,
                f"{max(w, 1):.1f}",
                row_h - 6,
                PALETTE[0],
                label,
                with_unit(value, unit),
                f"{label_width + w + 6:.1f}",
                y + 15,
                with_unit(value, unit),
            )
        )
    return _svg(title, width, height, parts)


def _legend(names: Sequence[str], *, x: int, y: int) -> str:
    return format_html_join(
        "",
        '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
        '<text class="label" x="{}" y="{}" fill="#333">{}</text>',
        (
            (x + 130 * i, y - 9, PALETTE[i % len(PALETTE)], x + 130 * i + 14, y, name)
            for i, name in enumerate(names)
        ),
    )


def _svg(title: str, width: int, height: int, parts: Sequence[str]) -> SafeString:
    head = format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="piadesk-chart" role="img" '
        'viewBox="0 0 {} {}" width="{}" height="{}" aria-label="{}" {}><title>{}</title>',
        width,
        height,
        width,
        height,
        title,
        mark_safe(FONT),
        title,
    )
    # Every part was built with format_html (escaped); joining keeps them safe.
    return mark_safe(head + "".join(parts) + "</svg>")
