"""Telling a tenant's staff: a connection paused, entries failed, the queue delayed.

Each event becomes one ``StaffNotice`` (unique per tenant, kind and event key) and one message:
an e-mail to the tenant's MSP staff (Django's e-mail backend, ``EMAIL_URL``) and, when the
tenant has one, a post to its Teams or Slack incoming webhook. A pause that holds 500 entries
is one event, so one message; failures found in one check are one message with their count.

Events are found by ``notices_check``, run by the sweep every minute (``timelogging.tasks``)
rather than raised where they happen: the delivery code stays as it is, a notice is never lost
with a rolled-back transaction, and a check that runs twice (two clusters) finds the same keys
and creates nothing new. Sending is a task of its own (``send_notice``), so a slow mail server
or webhook never delays posting; it records what was sent, so a retry sends only what is left.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min
from django.urls import reverse
from django.utils import timezone

from psa.base import PSAError
from psa.http import PSASession
from timelogging.crypto import SecretsUnavailable, decrypt_secrets, encrypt_secrets
from timelogging.models import (
    NotificationWebhook,
    PSAConnection,
    StaffNotice,
    Tenant,
    TimeEntry,
)
from timelogging.services.roles import GROUP_NAMES

logger = logging.getLogger(__name__)
Kind = StaffNotice.Kind
Status = TimeEntry.Status

# On the first check of a database, failures older than this are not announced as news.
FIRST_CHECK_LOOKBACK = dt.timedelta(hours=1)
WEBHOOK_TIMEOUT = (5, 10)
FAILED_KEY_PREFIX = "failed-up-to-"


# --- links -------------------------------------------------------------------------------------
def admin_url(path: str, query: dict[str, str] | None = None) -> str:
    """An absolute link to an admin page (PIADESK_BASE_URL, else the first allowed host)."""
    base = settings.PIADESK_BASE_URL.rstrip("/")
    if not base:
        hosts = [h for h in settings.ALLOWED_HOSTS if h and h not in {"*", "testserver"}]
        base = f"https://{hosts[0].lstrip('.')}" if hosts else ""
    return f"{base}{path}" + (f"?{urlencode(query)}" if query else "")


# --- finding events ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    created: int


def notices_check(*, now: dt.datetime | None = None) -> CheckResult:
    """Create the notices of every event not announced yet. Safe to run often and at once."""
    now = now or timezone.now()
    created = 0
    created += _check_paused_connections()
    created += _check_failed_entries(now=now)
    created += _check_queue_delays(now=now)
    return CheckResult(created=created)


def _check_paused_connections() -> int:
    created = 0
    paused = PSAConnection.objects.filter(is_active=True, paused_at__isnull=False).select_related(
        "tenant"
    )
    for connection in paused:
        if connection.paused_at is None:
            continue  # (the filter says it is not)
        held = TimeEntry.objects.filter(tenant_id=connection.tenant_id, status=Status.HELD).count()
        created += notice_create(
            tenant=connection.tenant,
            kind=Kind.CONNECTION_PAUSED,
            # One pause, one notice: paused again later is another event.
            key=f"{connection.pk}@{connection.paused_at.isoformat()}",
            subject=f"piadesk: the {connection.vendor_label} connection of {connection.tenant} "
            "is paused",
            body=(
                f"piadesk paused the PSA connection {connection} at "
                f"{connection.paused_at:%Y-%m-%d %H:%M} UTC and is holding its time entries "
                f"({held} now) until it is resumed.\n\n"
                f"Why: {connection.pause_reason or 'paused by staff'}\n\n"
                "Fix the cause (credentials, permissions, the PSA's settings), then open the "
                "connection, use Test connection, and resume it: the held entries are posted."
            ),
            link=admin_url(reverse("admin:timelogging_psaconnection_change", args=[connection.pk])),
        )
    return created


def _check_failed_entries(*, now: dt.datetime) -> int:
    """Entries failed since the tenant's last such notice: one notice per tenant and check."""
    # What the last notice covered: failures up to the time in its key (not its creation
    # time: an entry failing while that notice was being made must be news next time).
    last_notice: dict[int, dt.datetime] = {}
    recent = StaffNotice.objects.filter(
        kind=Kind.ENTRIES_FAILED, created_at__gt=now - dt.timedelta(days=8)
    ).values_list("tenant_id", "key")
    for tenant_id, key in recent:
        covered = dt.datetime.fromisoformat(key.removeprefix(FAILED_KEY_PREFIX))
        last_notice[tenant_id] = max(covered, last_notice.get(tenant_id, covered))
    failed = (
        TimeEntry.objects.filter(status=Status.FAILED, updated_at__gt=now - dt.timedelta(days=7))
        .values_list("tenant_id")
        .annotate(n=Count("pk"), newest=Max("updated_at"))
        .values_list("tenant_id", "n", "newest")
    )
    created = 0
    for tenant_id, _, newest in failed:
        since = last_notice.get(tenant_id) or (now - FIRST_CHECK_LOOKBACK)
        if newest <= since:
            continue
        new = TimeEntry.objects.filter(
            tenant_id=tenant_id, status=Status.FAILED, updated_at__gt=since
        )
        count = new.count()
        reasons = list(new.values_list("error_class").annotate(n=Count("pk")).order_by("-n")[:5])
        example = new.order_by("-updated_at").values_list("error", flat=True).first() or ""
        tenant = Tenant.objects.get(pk=tenant_id)
        created += notice_create(
            tenant=tenant,
            kind=Kind.ENTRIES_FAILED,
            key=f"{FAILED_KEY_PREFIX}{newest.isoformat()}",
            subject=f"piadesk: {count} time entr{'y' if count == 1 else 'ies'} of {tenant} "
            "failed and need a person",
            body=(
                f"{count} time entr{'y' if count == 1 else 'ies'} could not be logged in the PSA "
                "and will not be tried again by themselves.\n\n"
                + "".join(f"- {n} × {error_class or 'error'}\n" for error_class, n in reasons)
                + (f"\nLatest: {example[:500]}\n" if example else "")
                + "\nOpen the failed entries, fix what the PSA said, and retry them."
            ),
            link=admin_url(
                reverse("admin:timelogging_timeentry_changelist"),
                {"status__exact": Status.FAILED, "tenant__id__exact": str(tenant_id)},
            ),
        )
    return created


def _check_queue_delays(*, now: dt.datetime) -> int:
    """Tenants whose oldest due entry has waited longer than the threshold (daily at most)."""
    threshold = now - dt.timedelta(minutes=settings.PIADESK_NOTIFY_QUEUE_DELAY_MINUTES)
    delayed = (
        TimeEntry.objects.filter(status__in=TimeEntry.OPEN_STATUSES, next_attempt_at__lte=threshold)
        .values_list("tenant_id")
        .annotate(n=Count("pk"), oldest=Min("next_attempt_at"))
        .values_list("tenant_id", "n", "oldest")
    )
    created = 0
    for tenant_id, count, oldest in delayed:
        tenant = Tenant.objects.get(pk=tenant_id)
        waited = int((now - oldest).total_seconds() // 60)
        created += notice_create(
            tenant=tenant,
            kind=Kind.QUEUE_DELAYED,
            key=f"{now:%Y-%m-%d}",  # once a day at most while it lasts
            subject=f"piadesk: time entries of {tenant} are waiting ({waited} minutes)",
            body=(
                f"{count} time entr{'y has' if count == 1 else 'ies have'} been due for more "
                f"than {settings.PIADESK_NOTIFY_QUEUE_DELAY_MINUTES} minutes; the oldest has "
                f"waited {waited} minutes. The PSA may be refusing or throttling requests, or "
                "the worker may be stopped. The delivery queue shows what waits and why."
            ),
            link=admin_url(reverse("admin:delivery_queue")),
        )
    return created


# --- creating and sending ----------------------------------------------------------------------
def notice_create(
    *, tenant: Tenant, kind: str, key: str, subject: str, body: str, link: str
) -> int:
    """Record the event's notice and queue its sending; 0 when it was already recorded."""
    try:
        with transaction.atomic():
            notice = StaffNotice.objects.create(
                tenant=tenant, kind=kind, key=key, subject=subject[:200], body=body, link=link
            )
            transaction.on_commit(lambda: _enqueue_send(notice.pk))
    except IntegrityError:
        return 0  # this event was announced already (or by a concurrent check)
    logger.info("notice %s for tenant %s: %s", kind, tenant.pk, subject)
    return 1


def _enqueue_send(notice_id: int) -> None:
    from django_q.tasks import async_task

    async_task("timelogging.tasks.send_notice", notice_id, task_name=f"notice-{notice_id}")


def staff_emails(*, tenant_id: int) -> list[str]:
    """The e-mail addresses of the tenant's active MSP staff (auditors are not asked to act)."""
    users = (
        get_user_model()
        .objects.filter(
            is_active=True,
            piadesk_profile__tenant_id=tenant_id,
            groups__name=GROUP_NAMES["staff"],
        )
        .exclude(email="")
    )
    return sorted(set(users.values_list("email", flat=True)))


def notice_send(*, notice_id: int) -> str:
    """E-mail the notice and post it to the webhook; each at most once (retries are safe)."""
    notice = StaffNotice.objects.select_related("tenant").get(pk=notice_id)
    done = []
    if notice.emailed_at is None:
        recipients = staff_emails(tenant_id=notice.tenant_id)
        if recipients:
            message = EmailMessage(
                subject=notice.subject,
                body=f"{notice.body}\n\n{notice.link}\n",
                to=recipients,
            )
            message.send()  # raises on failure: the task fails and is retried by django-q2
        StaffNotice.objects.filter(pk=notice.pk).update(
            emailed_at=timezone.now(), emailed_to=len(recipients)
        )
        done.append(f"e-mailed {len(recipients)}")
    if notice.webhook_at is None:
        webhook = NotificationWebhook.objects.filter(
            tenant_id=notice.tenant_id, is_active=True
        ).first()
        if webhook is not None and webhook.url_encrypted:
            error = webhook_post(webhook=webhook, notice=notice)
            StaffNotice.objects.filter(pk=notice.pk).update(
                webhook_at=timezone.now(), webhook_error=error
            )
            done.append(f"webhook {'failed: ' + error if error else 'posted'}")
    return "; ".join(done) or "nothing to send"


def webhook_payload(*, style: str, notice: StaffNotice) -> dict[str, Any]:
    """Slack's incoming webhooks take ``text`` (mrkdwn); Teams' take a MessageCard."""
    if style == NotificationWebhook.Style.SLACK:
        return {"text": f"*{notice.subject}*\n{notice.body}\n<{notice.link}|Open in piadesk>"}
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": notice.subject,
        "title": notice.subject,
        "text": notice.body.replace("\n", "\n\n"),
        "potentialAction": [
            {
                "@type": "OpenUri",
                "name": "Open in piadesk",
                "targets": [{"os": "default", "uri": notice.link}],
            }
        ],
    }


def webhook_post(*, webhook: NotificationWebhook, notice: StaffNotice) -> str:
    """Post one notice; returns "" or what went wrong (never the URL: it is a secret).

    The request goes through piadesk's outgoing HTTP session (psa.http): timeouts, no
    redirects, the same outbound rules as PSA requests.
    """
    try:
        url = webhook_url(webhook)
    except SecretsUnavailable as exc:
        return str(exc)
    session = PSASession(
        connect_timeout=WEBHOOK_TIMEOUT[0], read_timeout=WEBHOOK_TIMEOUT[1], secrets=[url]
    )
    try:
        response = session.request(
            "POST", url, json_body=webhook_payload(style=webhook.style, notice=notice)
        )
    except PSAError as exc:
        return exc.message.replace(url, "<webhook>")
    finally:
        session.close()
    if not response.ok:
        return f"HTTP {response.status}: {response.text[:200]}"
    return ""


def webhook_url(webhook: NotificationWebhook) -> str:
    return decrypt_secrets(webhook.url_encrypted).get("url", "")


def webhook_save(
    *, tenant: Tenant, style: str, url: str = "", is_active: bool = True
) -> NotificationWebhook:
    """Create or update the tenant's webhook; an empty ``url`` keeps the stored one."""
    webhook, _ = NotificationWebhook.objects.get_or_create(tenant=tenant)
    webhook.style = style
    webhook.is_active = is_active
    if url:
        webhook.url_encrypted = encrypt_secrets({"url": url})
    webhook.save()
    return webhook
