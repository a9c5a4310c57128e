"""PIADESK_SWEEP_MINUTES is what the sweep's django-q2 schedule runs at (issue 11: it used to
change nothing, the schedule being fixed by migration 0003)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.db.models.signals import post_migrate
from django.utils import timezone
from django_q.models import Schedule
from django_q.signals import post_spawn

from timelogging.services.delivery import SWEEP_SCHEDULE, sweep_schedule_sync

pytestmark = pytest.mark.django_db


def sweep() -> Schedule:
    return Schedule.objects.get(name=SWEEP_SCHEDULE)


def test_the_migration_creates_the_sweep_every_minute():
    schedule = sweep()
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "timelogging.tasks.sweep_entries",
        Schedule.MINUTES,
        1,
        -1,
    )


def test_a_worker_starting_runs_the_schedule_at_the_setting(settings):
    """qcluster's workers apply the setting when they start (django-q2's post_spawn), so a
    changed environment takes effect with the restarted worker, without a migration."""
    settings.PIADESK_SWEEP_MINUTES = 5
    post_spawn.send(sender="django_q", proc_name="Process-1")
    assert sweep().minutes == 5


def test_migrating_applies_the_setting(settings):
    settings.PIADESK_SWEEP_MINUTES = 3
    post_migrate.send(
        sender=apps.get_app_config("timelogging"),
        app_config=apps.get_app_config("timelogging"),
        verbosity=0,
        interactive=False,
        using="default",
        apps=apps,
        plan=[],
    )
    assert sweep().minutes == 3


def test_a_shorter_interval_is_not_waited_out_at_the_old_one(settings):
    Schedule.objects.filter(name=SWEEP_SCHEDULE).update(
        minutes=60, next_run=timezone.now() + dt.timedelta(minutes=59)
    )
    settings.PIADESK_SWEEP_MINUTES = 2
    assert sweep_schedule_sync() is True
    schedule = sweep()
    assert schedule.minutes == 2
    assert schedule.next_run <= timezone.now() + dt.timedelta(minutes=2)
    # Already in line: nothing to write.
    assert sweep_schedule_sync() is False


def test_a_lost_schedule_is_created_again(settings):
    Schedule.objects.filter(name=SWEEP_SCHEDULE).delete()
    settings.PIADESK_SWEEP_MINUTES = 4
    assert sweep_schedule_sync() is True
    assert (sweep().minutes, sweep().func) == (4, "timelogging.tasks.sweep_entries")
