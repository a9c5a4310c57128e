"""Staff are told: one message per event (e-mail to the tenant's staff, and its webhook)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_q.models import OrmQ

from tests.factories import (
    AutomationRunFactory,
    PSAConnectionFactory,
    TenantFactory,
    TimeEntryFactory,
)
from timelogging.models import NotificationWebhook, StaffNotice, TimeEntry
from timelogging.services import notices
from timelogging.services.delivery import connection_pause
from timelogging.services.roles import role_grant

pytestmark = pytest.mark.django_db
Status = TimeEntry.Status


class Webhook:
    """An incoming-webhook endpoint on loopback that records what it receives."""

    def __init__(self, status: int = 200) -> None:
        received: list[Any] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"1" if status == 200 else b"invalid_payload")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhookb2/secret-path"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    server = Webhook()
    yield server
    server.close()


@pytest.fixture
def send_now(monkeypatch):
    """Send queued notices at once (the task django-q2 would run)."""
    monkeypatch.setattr(notices, "_enqueue_send", lambda pk: notices.notice_send(notice_id=pk))


@pytest.fixture
def staffed(settings):
    settings.PIADESK_BASE_URL = "https://piadesk.example.com"
    tenant = TenantFactory(name="Acme MSP")
    for name, role in (("sam", "staff"), ("kim", "staff"), ("ann", "auditor")):
        user = User.objects.create_user(name, email=f"{name}@acme.example")
        role_grant(user=user, tenant=tenant, role=role)
    User.objects.create_user("gone", email="gone@acme.example", is_active=False)
    other = TenantFactory(name="Other MSP")
    role_grant(
        user=User.objects.create_user("oz", email="oz@other.example"), tenant=other, role="staff"
    )
    return tenant


def entries(tenant, n, **fields):
    return [TimeEntryFactory(run=AutomationRunFactory(tenant=tenant), **fields) for _ in range(n)]


def test_a_pause_holding_500_entries_sends_one_email_and_one_webhook_message(
    staffed, webhook, send_now, mailoutbox, django_capture_on_commit_callbacks
):
    connection = PSAConnectionFactory(tenant=staffed)
    notices.webhook_save(tenant=staffed, style=NotificationWebhook.Style.TEAMS, url=webhook.url)
    entries(
        staffed, 500, status=Status.PENDING, connection=connection, next_attempt_at=timezone.now()
    )
    assert connection_pause(connection_id=connection.pk, reason="401: bad private key") == 500

    with django_capture_on_commit_callbacks(execute=True):
        assert notices.notices_check().created == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert notices.notices_check().created == 0  # the next minute's check: same event

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert sorted(mail.to) == ["kim@acme.example", "sam@acme.example"]  # staff, not auditors
    assert "paused" in mail.subject and "Acme MSP" in mail.subject
    assert "401: bad private key" in mail.body and "(500 now)" in mail.body
    link = f"https://piadesk.example.com/admin/timelogging/psaconnection/{connection.pk}/change/"
    assert link in mail.body

    assert len(webhook.received) == 1
    card = webhook.received[0]
    assert card["@type"] == "MessageCard" and "paused" in card["title"]
    assert card["potentialAction"][0]["targets"][0]["uri"] == link
    notice = StaffNotice.objects.get()
    assert (notice.emailed_to, notice.webhook_error) == (2, "")
    assert notice.webhook_at is not None


def test_paused_again_later_is_a_new_event(
    staffed, send_now, mailoutbox, django_capture_on_commit_callbacks
):
    connection = PSAConnectionFactory(tenant=staffed, paused_at=timezone.now(), pause_reason="x")
    with django_capture_on_commit_callbacks(execute=True):
        notices.notices_check()
    connection.paused_at = timezone.now() + dt.timedelta(hours=1)
    connection.save()
    with django_capture_on_commit_callbacks(execute=True):
        notices.notices_check()
    assert len(mailoutbox) == 2


def test_failures_found_in_one_check_are_one_message_with_their_count(
    staffed, send_now, mailoutbox, django_capture_on_commit_callbacks
):
    entries(staffed, 3, status=Status.FAILED, error_class="permanent", error="Ticket 69 is closed")
    with django_capture_on_commit_callbacks(execute=True):
        notices.notices_check()
        notices.notices_check()
    assert len(mailoutbox) == 1
    assert "3 time entries of Acme MSP failed" in mailoutbox[0].subject
    assert "3 × permanent" in mailoutbox[0].body and "Ticket 69 is closed" in mailoutbox[0].body
    assert f"status__exact=failed&tenant__id__exact={staffed.pk}" in mailoutbox[0].body

    # A later failure is news: one more message, about it alone.
    later = timezone.now() + dt.timedelta(minutes=2)
    late = entries(staffed, 1, status=Status.FAILED, error_class="user")[0]
    TimeEntry.objects.filter(pk=late.pk).update(updated_at=later)
    with django_capture_on_commit_callbacks(execute=True):
        notices.notices_check(now=later)
    assert len(mailoutbox) == 2
    assert "1 time entry of Acme MSP failed" in mailoutbox[1].subject


def test_a_delayed_queue_is_told_once_a_day(
    staffed, settings, send_now, mailoutbox, django_capture_on_commit_callbacks
):
    settings.PIADESK_NOTIFY_QUEUE_DELAY_MINUTES = 60
    now = timezone.now()
    entries(staffed, 2, status=Status.RETRY_WAIT, next_attempt_at=now - dt.timedelta(minutes=90))
    entries(staffed, 1, status=Status.PENDING, next_attempt_at=now - dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        notices.notices_check(now=now)
        notices.notices_check(now=now + dt.timedelta(minutes=1))
    assert len(mailoutbox) == 1
    assert "waiting (90 minutes)" in mailoutbox[0].subject
    assert "/admin/timelogging/timeentry/queue/" in mailoutbox[0].body


def test_nothing_to_tell_sends_nothing(
    staffed, send_now, mailoutbox, django_capture_on_commit_callbacks
):
    entries(staffed, 2, status=Status.POSTED)
    entries(staffed, 1, status=Status.PENDING, next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert notices.notices_check().created == 0
    assert mailoutbox == []


def test_notices_are_sent_by_a_queued_task(staffed, django_capture_on_commit_callbacks):
    PSAConnectionFactory(tenant=staffed, paused_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        notices.notices_check()
    task = OrmQ.objects.get()
    assert task.task["func"] == "timelogging.tasks.send_notice"
    assert task.task["args"] == (StaffNotice.objects.get().pk,)


def test_a_refusing_webhook_is_recorded_and_the_email_still_sent(
    staffed, send_now, mailoutbox, django_capture_on_commit_callbacks
):
    server = Webhook(status=400)
    try:
        notices.webhook_save(tenant=staffed, style=NotificationWebhook.Style.SLACK, url=server.url)
        PSAConnectionFactory(tenant=staffed, paused_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            notices.notices_check()
    finally:
        server.close()
    assert len(mailoutbox) == 1
    assert server.received[0]["text"].startswith("*piadesk: the ConnectWise PSA connection")
    notice = StaffNotice.objects.get()
    assert notice.webhook_error == "HTTP 400: invalid_payload"


def test_the_webhook_url_is_stored_encrypted(staffed):
    url = "https://acme.webhook.office.com/webhookb2/very-secret"
    webhook = notices.webhook_save(tenant=staffed, style=NotificationWebhook.Style.TEAMS, url=url)
    assert "very-secret" not in webhook.url_encrypted
    assert notices.webhook_url(webhook) == url
    notices.webhook_save(tenant=staffed, style=NotificationWebhook.Style.SLACK)  # blank: kept
    webhook.refresh_from_db()
    assert notices.webhook_url(webhook) == url and webhook.style == "slack"
