"""What an ingest reads about its tenant, kept per web process: the tenant's settings, and per
client and automation key the row's id, name and what the decision needs.

Why: most ingests report clients and automations already known, under settings that rarely
change; reading them again on every run cost three queries and a third of the ingest's time.

**Invalidation** (correctness first; several gunicorn processes on several hosts):
``Tenant.config_version`` is a random value replaced in the same transaction as any change to
what is kept here (``_bump`` below, connected to the models' signals in ``apps.py``):

- the tenant's settings (any save of the tenant) and its "apply to" tags;
- a client changed or deleted, its tags added or removed (from either side), a tag deleted
  (its client links go with it);
- an automation changed or deleted.

Every ingest reads the tenant's ``config_version`` (one row by primary key) before anything
else; when it differs from the value this process keeps, the tenant's cache is dropped and
read again. Whatever is read after the value was read is at least as new as the change that
set it, so a kept row is never older than the value it is kept under: the next ingest on every
process decides with the settings saved, and no delay or time-to-live is involved.

A row created by the ingest itself is not kept (its transaction may still roll back: a 409),
nor one whose name the ingest just changed (that change replaces ``config_version``): the next
ingest reads it. A created row needs no invalidation: no process can have kept what did not
exist. Writes that bypass model signals (``QuerySet.update``, raw SQL) on these tables must
call ``tenant_config_changed`` themselves.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router
from django.db.models import UUIDField

from timelogging.models import Automation, Client, Tag, Tenant

# A bound on what one process keeps per tenant (rows, not bytes): beyond it the tenant's
# cache starts afresh, so a tenant reporting ever new keys cannot grow a process unbounded.
MAX_KEYS_PER_TENANT = 20_000


@dataclass(frozen=True)
class KnownClient:
    id: int
    name: str
    # The client's tags that are among the tenant's "apply to" tags (empty unless the tenant
    # logs "Based on Tag"): all the decision needs of them.
    scope_tag_ids: frozenset[int]

    @classmethod
    def of(cls, client: Client, scope_tag_ids: frozenset[int]) -> KnownClient:
        return cls(id=client.pk, name=client.name, scope_tag_ids=scope_tag_ids)


@dataclass(frozen=True)
class KnownAutomation:
    id: int
    key: str
    name: str
    log_time: bool
    minutes: int | None

    @classmethod
    def of(cls, automation: Automation) -> KnownAutomation:
        return cls(
            id=automation.pk,
            key=automation.key,
            name=automation.name,
            log_time=automation.log_time,
            minutes=automation.minutes,
        )


@dataclass
class TenantCatalog:
    """One tenant's settings and known keys, as of ``tenant.config_version``."""

    tenant: Tenant
    clients: dict[str, KnownClient] = field(default_factory=dict)
    automations: dict[str, KnownAutomation] = field(default_factory=dict)

    @staticmethod
    def keep(kept: dict[str, Any], key: str, known: KnownClient | KnownAutomation) -> None:
        """Keep ``known`` in ``kept`` (``clients`` or ``automations``), within the bound."""
        if len(kept) >= MAX_KEYS_PER_TENANT:
            kept.clear()
        kept[key] = known


# tenant id -> its catalog. Replaced whole, never changed in place across versions, so that a
# thread still using an older catalog sees a consistent one.
_catalogs: dict[int, TenantCatalog] = {}


def tenant_catalog(*, tenant_id: int) -> TenantCatalog:
    """The tenant's catalog as of its ``config_version`` now: one query when nothing changed,
    two (the version, then the tenant) when something did. Raises ``Tenant.DoesNotExist``."""
    # Plain SQL: this read is on every ingest, and the ORM's query building cost more than it.
    connection = connections[router.db_for_read(Tenant)]
    with connection.cursor() as cursor:
        cursor.execute(_version_sql(connection.alias), [tenant_id])
        row = cursor.fetchone()
    if row is None:
        raise Tenant.DoesNotExist(f"No tenant {tenant_id}")
    version = _VERSION_FIELD.to_python(row[0])  # a UUID from PostgreSQL, hex from SQLite
    catalog = _catalogs.get(tenant_id)
    if catalog is None or catalog.tenant.config_version != version:
        catalog = TenantCatalog(tenant=Tenant.objects.get(pk=tenant_id))
        _catalogs[tenant_id] = catalog
    return catalog


_VERSION_FIELD = Tenant._meta.get_field("config_version")
assert isinstance(_VERSION_FIELD, UUIDField)


@functools.cache
def _version_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    column, pk = _VERSION_FIELD.column, Tenant._meta.pk.column
    assert column is not None and pk is not None
    return f"SELECT {quote(column)} FROM {quote(Tenant._meta.db_table)} WHERE {quote(pk)} = %s"


def clear() -> None:
    """Forget every tenant's catalog (tests: ids may be reused after a rollback)."""
    _catalogs.clear()


# --- invalidation -----------------------------------------------------------------------------
def tenant_config_changed(*, tenant_id: int) -> uuid.UUID:
    """Replace the tenant's ``config_version``: every process reads its catalog again."""
    version = uuid.uuid4()
    Tenant.objects.filter(pk=tenant_id).update(config_version=version)
    return version


def _bump(tenant_id: int | None) -> None:
    if tenant_id is not None:
        tenant_config_changed(tenant_id=tenant_id)


def on_tenant_saved(sender: Any, instance: Tenant, created: bool, **kwargs: Any) -> None:
    if not created:
        # Kept on the instance too: saved again, it must not write back the value it was
        # loaded with (the bump that follows every save would replace it anyway).
        instance.config_version = tenant_config_changed(tenant_id=instance.pk)


def on_catalog_row_saved(
    sender: Any, instance: Client | Automation, created: bool, **kwargs: Any
) -> None:
    # A new row was kept by no process (see the module docstring): no need to drop anything.
    if not created:
        _bump(instance.tenant_id)


def on_catalog_row_deleted(sender: Any, instance: Client | Automation | Tag, **kwargs: Any) -> None:
    _bump(instance.tenant_id)


def on_tags_changed(
    sender: Any, instance: Tenant | Client | Tag, action: str, **kwargs: Any
) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        _bump(instance.pk if isinstance(instance, Tenant) else instance.tenant_id)


def connect_signals() -> None:
    from django.db.models.signals import m2m_changed, post_delete, post_save

    uid = "ingest_cache"
    post_save.connect(on_tenant_saved, sender=Tenant, dispatch_uid=f"{uid}.tenant")
    for model in (Client, Automation):
        post_save.connect(on_catalog_row_saved, sender=model, dispatch_uid=f"{uid}.{model}.save")
    for deleted in (Client, Automation, Tag):
        post_delete.connect(
            on_catalog_row_deleted, sender=deleted, dispatch_uid=f"{uid}.{deleted}.del"
        )
    for through in (Client.tags.through, Tenant.apply_tags.through):
        m2m_changed.connect(on_tags_changed, sender=through, dispatch_uid=f"{uid}.{through}")
