"""How the history pages show a value to people: statuses as labelled badges, long text as one
line (the whole of it on hover and on the detail page), durations in seconds or minutes, codes
as their labels. One place, so that the runs, entries, queue and configuration history read
alike; the look is ``static/timelogging/history.css`` (the admin's colour variables, so dark
mode follows).
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

from psa.base import ErrorClass
from timelogging.models import AutomationRun, TimeEntry

HISTORY_CSS = "timelogging/history.css"

# A badge's tone: ok (done), wait (on its way), warn (needs a look), error (needs a person),
# quiet (nothing to do). The label always says it in words; the colour only helps.
_ENTRY_TONE: dict[str, str] = {
    TimeEntry.Status.PENDING: "wait",
    TimeEntry.Status.POSTING: "wait",
    TimeEntry.Status.RETRY_WAIT: "wait",
    TimeEntry.Status.POSTED: "ok",
    TimeEntry.Status.FAILED: "error",
    TimeEntry.Status.HELD: "warn",
    TimeEntry.Status.DISCARDED: "quiet",
}
# Short labels for a narrow column; the full label is the badge's title.
_ENTRY_SHORT: dict[str, str] = {
    TimeEntry.Status.RETRY_WAIT: "Retrying",
    TimeEntry.Status.FAILED: "Failed",
    TimeEntry.Status.HELD: "Held",
    TimeEntry.Status.DISCARDED: "Discarded",
}


def badge(label: str, tone: str, *, title: str = "") -> SafeString:
    return format_html(
        '<span class="piadesk-badge piadesk-badge-{}" title="{}">{}</span>',
        tone,
        title or label,
        label,
    )


def entry_status_badge(status: str) -> SafeString:
    """An entry's status: "Failed" (titled "Failed (needs a person)"), in its tone."""
    if status not in TimeEntry.Status.values:
        return badge(status or "-", "quiet")
    full = str(TimeEntry.Status(status).label)
    return badge(_ENTRY_SHORT.get(status, full), _ENTRY_TONE[status], title=full)


def decision_badge(run: AutomationRun) -> SafeString:
    """A run's decision: "Logged", or "Skipped" titled with why."""
    if run.decision == AutomationRun.Decision.LOG:
        return badge("Logged", "ok", title=run.reason)
    return badge("Skipped", "quiet", title=run.reason)


def one_line(text: str, *, empty: str = "", title: str = "") -> SafeString | str:
    """``text`` on one line, cut by the page's width (CSS ellipsis); the whole of it (or
    ``title``) on hover, and on the detail page."""
    text = " ".join((text or "").split())
    if not text:
        return empty
    return format_html('<span class="piadesk-one-line" title="{}">{}</span>', title or text, text)


def error_class_label(value: str) -> str:
    """An error class in words ("One user (no usable PSA user)"); "" for none."""
    if not value:
        return ""
    return str(ErrorClass(value).label) if value in ErrorClass.values else value


def duration_text(seconds: float | None) -> str:
    """17.080418 → "17.1 s"; 0.35 → "350 ms"; 200 → "3 min 20 s"; 4000 → "1 h 6 min"."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
