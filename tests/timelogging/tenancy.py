"""Two tenants with one of everything, and members of each role, for the isolation, roles and
configuration history tests.

Every string that identifies tenant B's rows carries ``B_MARK``, so "tenant B leaked into this
page" is one substring test over the response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Model
from django.utils import timezone

from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    PSAConnectionFactory,
    TagFactory,
    TenantFactory,
    TimeEntryFactory,
)
from timelogging import models
from timelogging.services.notices import webhook_save
from timelogging.services.roles import Role, role_grant

A_MARK = "alpha-qx"
B_MARK = "bravo-zk"


@dataclass
class TenantWorld:
    """One tenant's rows, one of each model the admin shows."""

    tenant: models.Tenant
    tag: models.Tag
    client: models.Client
    automation: models.Automation
    connection: models.PSAConnection
    mapping: models.PSAUserMapping
    api_key: models.TenantAPIKey
    plain_key: str
    run: models.AutomationRun
    entry: models.TimeEntry
    attempt: models.PostAttempt
    webhook: models.NotificationWebhook
    notice: models.StaffNotice

    def object_of(self, model: type[Model]) -> Model:
        """This tenant's row of ``model`` (its configuration change: the latest)."""
        if model is models.ConfigChange:
            return models.ConfigChange.objects.filter(tenant=self.tenant).first()
        by_model: dict[type[Model], Model] = {
            models.Tenant: self.tenant,
            models.Tag: self.tag,
            models.Client: self.client,
            models.Automation: self.automation,
            models.PSAConnection: self.connection,
            models.PSAUserMapping: self.mapping,
            models.TenantAPIKey: self.api_key,
            models.AutomationRun: self.run,
            models.TimeEntry: self.entry,
            models.PostAttempt: self.attempt,
            models.NotificationWebhook: self.webhook,
            models.StaffNotice: self.notice,
        }
        return by_model[model]


def build_world(mark: str) -> TenantWorld:
    tenant = TenantFactory.create(name=f"{mark} MSP")
    tag = TagFactory.create(tenant=tenant, name=f"{mark} tag")
    client = ClientFactory.create(
        tenant=tenant, key=f"{mark}-client", name=f"{mark} client", tags=[tag]
    )
    automation = AutomationFactory.create(
        tenant=tenant, key=f"{mark}-automation", name=f"{mark} automation", minutes=20
    )
    connection = PSAConnectionFactory.create(
        tenant=tenant,
        name=f"{mark} connection",
        paused_at=timezone.now(),
        pause_reason=f"{mark} credentials were refused",
    )
    mapping = models.PSAUserMapping.objects.create(
        tenant=tenant,
        connection=connection,
        email=f"{mark}@msp.example",
        psa_user_ref=f"{mark}-member",
        psa_user_name=f"{mark} member",
    )
    api_key, plain_key = models.TenantAPIKey.objects.create_key(tenant=tenant, name=f"{mark} key")
    assert isinstance(api_key, models.TenantAPIKey)  # the manager's stubs say AbstractAPIKey
    run = AutomationRunFactory.create(
        tenant=tenant,
        client=client,
        automation=automation,
        run_id=f"{mark}-run",
        started_by=f"{mark}@msp.example",
        summary=f"{mark} summary",
    )
    entry = TimeEntryFactory.create(
        run=run,
        connection=connection,
        status=models.TimeEntry.Status.FAILED,
        error_class="permanent",
        error=f"{mark} error from the PSA",
        psa_user_ref=f"{mark}-member",
    )
    attempt = models.PostAttempt.objects.create(
        tenant=tenant,
        entry=entry,
        number=1,
        started_at=timezone.now(),
        outcome="permanent",
        error=f"{mark} attempt error",
    )
    webhook = webhook_save(
        tenant=tenant, style="teams", url=f"https://{mark}.webhook.office.com/webhookb2/x"
    )
    notice = models.StaffNotice.objects.create(
        tenant=tenant,
        kind=models.StaffNotice.Kind.CONNECTION_PAUSED,
        key=f"{mark}-pause",
        subject=f"piadesk: the connection of {mark} MSP is paused",
        body=f"{mark} credentials were refused",
        link="https://piadesk.example.com/admin/",
    )
    return TenantWorld(
        tenant=tenant,
        tag=tag,
        client=client,
        automation=automation,
        connection=connection,
        mapping=mapping,
        api_key=api_key,
        plain_key=plain_key,
        run=run,
        entry=entry,
        attempt=attempt,
        webhook=webhook,
        notice=notice,
    )


def make_member(tenant: models.Tenant, role: Role, username: str | None = None) -> User:
    user = User.objects.create_user(username or f"{role}-{tenant.pk}", password="pw")
    role_grant(user=user, tenant=tenant, role=role)
    return User.objects.get(pk=user.pk)  # without cached permissions


def text(response: Any) -> str:
    content = getattr(response, "streaming_content", None)
    if content is not None:
        return b"".join(content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")
