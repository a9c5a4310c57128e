"""django-q2 tasks. Arguments are ids only (they are pickled and shown in the task admin)."""

from __future__ import annotations

import logging

from timelogging.services.delivery import entries_sweep
from timelogging.services.entry_catalog import entries_catalog_fill
from timelogging.services.notices import notice_send, notices_check
from timelogging.services.posting import entry_post

logger = logging.getLogger(__name__)


def post_time_entry(entry_id: int) -> str:
    return entry_post(entry_id=entry_id)


def sweep_entries() -> str:
    """Run by the "piadesk sweep" schedule (migration 0003) and after staff release entries.

    Also looks for events to tell staff about (services/notices.py): every minute, by whichever
    cluster runs the schedule; a failing check must not stop the sweep. And fills in the
    client and automation of entries written by the previous version during an upgrade
    (services/entry_catalog.py).
    """
    result = entries_sweep()
    filled = entries_catalog_fill()
    if filled:
        logger.info("sweep: client and automation copied onto %s entries", filled)
    try:
        notices = notices_check().created
    except Exception:
        logger.exception("notices check failed")
        notices = 0
    return f"{result.rescued} rescued, {result.enqueued} enqueued, {notices} notices"


def send_notice(notice_id: int) -> str:
    return notice_send(notice_id=notice_id)
