"""factory-boy factories for the domain models."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from timelogging import models


class TenantFactory(factory.django.DjangoModelFactory[models.Tenant]):
    class Meta:
        model = models.Tenant

    name = factory.Sequence(lambda n: f"MSP {n}")
    time_logging_enabled = True
    apply_to = models.Tenant.ApplyTo.ALL
    log_as = models.Tenant.LogAs.STARTER


class TagFactory(factory.django.DjangoModelFactory[models.Tag]):
    class Meta:
        model = models.Tag

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Tag {n}")


class ClientFactory(factory.django.DjangoModelFactory[models.Client]):
    class Meta:
        model = models.Client
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    key = factory.Sequence(lambda n: f"client-{n}")
    name = factory.Sequence(lambda n: f"Client {n}")

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)


class AutomationFactory(factory.django.DjangoModelFactory[models.Automation]):
    class Meta:
        model = models.Automation

    tenant = factory.SubFactory(TenantFactory)
    key = factory.Sequence(lambda n: f"automation-{n}")
    name = factory.Sequence(lambda n: f"Automation {n}")


class PSAConnectionFactory(factory.django.DjangoModelFactory[models.PSAConnection]):
    """A ConnectWise connection; pass ``secrets={...}`` to set encrypted secrets."""

    class Meta:
        model = models.PSAConnection
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    vendor = "connectwise"
    settings = factory.LazyFunction(
        lambda: {
            "site_url": "https://cw.example.com",
            "company_id": "acme",
            "public_key": "pubkey123",
        }
    )

    @factory.post_generation
    def secrets(self, create, extracted, **kwargs):
        from timelogging.crypto import encrypt_secrets

        self.secrets_encrypted = encrypt_secrets(
            extracted if extracted is not None else {"private_key": "privkey456"}
        )
        if create:
            self.save(update_fields=["secrets_encrypted"])


class AutomationRunFactory(factory.django.DjangoModelFactory[models.AutomationRun]):
    class Meta:
        model = models.AutomationRun

    tenant = factory.SubFactory(TenantFactory)
    run_id = factory.Sequence(lambda n: f"run-{n}")
    automation = factory.SubFactory(AutomationFactory, tenant=factory.SelfAttribute("..tenant"))
    client = factory.SubFactory(ClientFactory, tenant=factory.SelfAttribute("..tenant"))
    ticket_id = "69"
    started_by = "jdoe@msp.example"
    started_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    completed_at = factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(minutes=7))
    outcome = models.AutomationRun.Outcome.COMPLETED
    summary = "Reset the password of jane@client.example"
    content_hash = factory.Sequence(lambda n: f"{n:064d}")
    decision = models.AutomationRun.Decision.LOG


class TimeEntryFactory(factory.django.DjangoModelFactory[models.TimeEntry]):
    class Meta:
        model = models.TimeEntry

    run = factory.SubFactory(AutomationRunFactory)
    tenant = factory.SelfAttribute("run.tenant")
    log_as = factory.SelfAttribute("run.tenant.log_as")
    minutes = 7
    start = factory.SelfAttribute("run.started_at")
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(minutes=o.minutes))
    notes = factory.LazyAttribute(lambda o: f"{o.run.summary}\n{o.run.reference_text}")


def tenant_settings_set(tenant: models.Tenant, *, tags: list[models.Tag]) -> models.Tenant:
    """Every setting of the tenant page set, as an auditor would read them: time logging on,
    for clients tagged ``tags``, logged as the PSA user "timelogging" (Time Logging), in New
    York time."""
    tenant.time_logging_enabled = True
    tenant.apply_to = models.Tenant.ApplyTo.TAGS
    tenant.log_as = models.Tenant.LogAs.SPECIFIED
    tenant.specified_psa_user_ref = "timelogging"
    tenant.specified_psa_user_name = "Time Logging"
    tenant.time_zone = "America/New_York"
    tenant.save()
    tenant.apply_tags.set(tags)
    return tenant
