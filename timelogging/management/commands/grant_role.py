"""``manage.py grant_role <username> --tenant "<name>" --role staff|auditor``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from timelogging.models import Tenant
from timelogging.services.roles import GROUP_NAMES, RoleError, role_grant


class Command(BaseCommand):
    help = (
        "Make a user MSP staff (configures the tenant) or an auditor (reads everything of the "
        "tenant, changes nothing) of one tenant, in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--tenant", required=True, help="The tenant's name, exactly.")
        parser.add_argument("--role", required=True, choices=list(GROUP_NAMES))
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create the user when missing (without a password: set one with "
            "`manage.py changepassword <username>`).",
        )

    def handle(self, *args: Any, username: str, tenant: str, role: Any, create: bool, **kw: Any):
        try:
            tenant_obj = Tenant.objects.get(name=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant named {tenant!r}.") from None
        user_model = get_user_model()
        user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is None:
            if not create:
                raise CommandError(f"No user {username!r} (add --create to create it).")
            user = user_model.objects.create_user(username, is_staff=True)
            user.set_unusable_password()
            user.save(update_fields=["password"])
        try:
            role_grant(user=user, tenant=tenant_obj, role=role)
        except RoleError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{username} is now {GROUP_NAMES[role]} of {tenant_obj.name}.")
        if not user.has_usable_password():
            self.stdout.write(f"Set a password with: python manage.py changepassword {username}")
