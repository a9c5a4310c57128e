"""django-q2 tasks. Arguments are ids only (they are pickled and shown in the task admin)."""

from __future__ import annotations

from timelogging.services.posting import entry_post


def post_time_entry(entry_id: int) -> str:
    return entry_post(entry_id=entry_id)
