"""Re-encrypt every stored PSA credential with the first key of PIADESK_ENCRYPTION_KEYS.

Key rotation (README, "Key rotation"): put the new key first, restart, run this, then remove
the old key. Connections whose secrets no configured key decrypts are listed and left as they
are (their staff must type the secrets again).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from timelogging.crypto import SecretsUnavailable, reencrypt_token
from timelogging.models import PSAConnection


class Command(BaseCommand):
    help = "Re-encrypt stored PSA credentials with the first PIADESK_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        done, unreadable = 0, []
        connections = PSAConnection.objects.exclude(secrets_encrypted="").only(
            "pk", "secrets_encrypted"
        )
        for connection in connections.iterator():
            try:
                token = reencrypt_token(connection.secrets_encrypted)
            except SecretsUnavailable:
                unreadable.append(connection.pk)
                continue
            # The secrets are unchanged: no save() (and no configuration-history row).
            PSAConnection.objects.filter(pk=connection.pk).update(secrets_encrypted=token)
            done += 1
        self.stdout.write(f"{done} connection(s) re-encrypted with the first key.")
        if unreadable:
            raise CommandError(
                f"No configured key decrypts the secrets of connection(s) {unreadable}: "
                "keep the old key until their secrets are typed again."
            )
