"""django-q2 tasks. Arguments are ids only (they are pickled and shown in the task admin)."""

from __future__ import annotations

from timelogging.services.delivery import entries_sweep
from timelogging.services.posting import entry_post


def post_time_entry(entry_id: int) -> str:
    return entry_post(entry_id=entry_id)


def sweep_entries() -> str:
    """Run by the "piadesk sweep" schedule (migration 0003) and after staff release entries."""
    result = entries_sweep()
    return f"{result.rescued} rescued, {result.enqueued} enqueued"
