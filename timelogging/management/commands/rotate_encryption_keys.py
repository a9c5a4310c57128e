"""Re-encrypt every stored PSA credential and notification webhook URL with the first key of
PIADESK_ENCRYPTION_KEYS.

Key rotation (README, "Key rotation"): put the new key first, restart, run this, then remove
the old key. Rows whose secrets no configured key decrypts are listed and left as they
are (their staff must type the secrets again).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from timelogging.crypto import SecretsUnavailable, reencrypt_token
from timelogging.models import NotificationWebhook, PSAConnection


class Command(BaseCommand):
    help = "Re-encrypt stored PSA credentials with the first PIADESK_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        problems = []
        for model, field, what in (
            (PSAConnection, "secrets_encrypted", "connection"),
            (NotificationWebhook, "url_encrypted", "notification webhook"),
        ):
            done, unreadable = 0, []
            rows = model.objects.exclude(**{field: ""}).only("pk", field)
            for row in rows.iterator():
                try:
                    token = reencrypt_token(getattr(row, field))
                except SecretsUnavailable:
                    unreadable.append(row.pk)
                    continue
                # The secrets are unchanged: no save() (and no configuration-history row).
                model.objects.filter(pk=row.pk).update(**{field: token})
                done += 1
            self.stdout.write(f"{done} {what}(s) re-encrypted with the first key.")
            if unreadable:
                problems.append(f"{what}(s) {unreadable}")
        if problems:
            raise CommandError(
                f"No configured key decrypts the secrets of {', '.join(problems)}: keep the "
                "old key until they are typed again."
            )
