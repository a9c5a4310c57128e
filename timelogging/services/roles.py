"""Roles: "MSP staff" configure their tenant, "Auditor" reads everything of theirs.

A role is a Django group (its permissions: what a member may do) plus the member's
``StaffProfile`` (which tenant: the admin shows and changes that tenant's rows only). The groups
are created by migration ``0007_roles``; ``ROLE_PERMISSIONS`` is the current definition, which a
test holds the migrated groups to.
"""

from __future__ import annotations

from typing import Literal

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

from timelogging.models import StaffProfile, Tenant

Role = Literal["staff", "auditor"]

GROUP_NAMES: dict[Role, str] = {"staff": "MSP staff", "auditor": "Auditor"}

_CONFIGURED = (
    "tag",
    "client",
    "automation",
    "psaconnection",
    "psausermapping",
    "tenantapikey",
    "notificationwebhook",
)
_HISTORY = ("automationrun", "timeentry", "postattempt", "configchange", "staffnotice")

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    # No delete: tags, connections and keys stay for the history (a key is revoked, a
    # connection deactivated). Tenants are created by superusers.
    "staff": frozenset(
        {"change_tenant", "view_tenant", "retry_timeentry"}
        | {f"{action}_{model}" for model in _CONFIGURED for action in ("add", "change", "view")}
        | {f"view_{model}" for model in _HISTORY}
    ),
    "auditor": frozenset(f"view_{model}" for model in ("tenant", *_CONFIGURED, *_HISTORY)),
}


class RoleError(ValueError):
    """A role cannot be granted as asked (the message says why)."""


def role_group(*, role: Role) -> Group:
    """The role's group; created with its permissions when missing (a database flushed by a
    test, or a group deleted by hand)."""
    group, created = Group.objects.get_or_create(name=GROUP_NAMES[role])
    if created:
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label="timelogging", codename__in=ROLE_PERMISSIONS[role]
            )
        )
    return group


@transaction.atomic
def role_grant(*, user: User, tenant: Tenant, role: Role) -> StaffProfile:
    """Make ``user`` a member of ``tenant`` with ``role`` (the other role is taken away: a
    member is staff or auditor, not both). The user may then sign in to the admin."""
    if role not in GROUP_NAMES:
        raise RoleError(f"Unknown role {role!r}: choose {' or '.join(GROUP_NAMES)}.")
    if user.is_superuser:
        raise RoleError(f"{user} is a superuser and sees every tenant; a role would not limit it.")
    existing = StaffProfile.objects.filter(user=user).select_related("tenant").first()
    if existing is not None and existing.tenant_id != tenant.pk:
        # Moving a member between tenants silently would hand them the other tenant's data.
        raise RoleError(
            f"{user} already belongs to {existing.tenant}; remove that membership first."
        )
    profile = existing or StaffProfile.objects.create(user=user, tenant=tenant)
    other = [name for key, name in GROUP_NAMES.items() if key != role]
    user.groups.remove(*Group.objects.filter(name__in=other))
    user.groups.add(role_group(role=role))
    if not user.is_staff:
        user.is_staff = True  # the admin is where roles are used
        user.save(update_fields=["is_staff"])
    return profile
