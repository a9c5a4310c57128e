"""Admin pages of other apps whose rows belong to no tenant, made superuser-only.

Users and groups: a staff member who could edit users could make themselves a superuser or
join another tenant's group. The task queue (django-q2's successful, failed, scheduled and
queued tasks): every task's arguments are entry ids of any tenant, and "resubmit" would run
them again. Login lockouts (django-axes' access attempts and logs) name users and addresses of
every tenant. Each admin is replaced by the same class with ``SuperuserOnlyAdminMixin`` in front,
so superusers keep the pages exactly as the apps made them.
"""

from __future__ import annotations

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db.models import Model
from django_q.models import Failure, OrmQ, Schedule, Success

from timelogging.admin.base import SuperuserOnlyAdminMixin

SUPERUSER_ONLY_MODELS: tuple[type[Model], ...] = (
    User,
    Group,
    Schedule,
    Success,
    Failure,
    OrmQ,
    # Login lockouts (django-axes) name users of every tenant: the operator's to see and clear.
    AccessAttempt,
    AccessLog,
    AccessFailureLog,
)


def make_superuser_only(model: type[Model], site: admin.AdminSite = admin.site) -> None:
    if not site.is_registered(model):
        return
    current = type(site.get_model_admin(model))
    if issubclass(current, SuperuserOnlyAdminMixin):
        return
    site.unregister(model)
    site.register(model, type(current.__name__, (SuperuserOnlyAdminMixin, current), {}))


for _model in SUPERUSER_ONLY_MODELS:
    make_superuser_only(_model)
