"""Key rotation: rotate_encryption_keys re-encrypts stored PSA credentials with the new key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from tests.factories import PSAConnectionFactory
from timelogging import crypto
from timelogging.services.notices import webhook_save, webhook_url

pytestmark = pytest.mark.django_db

OLD, NEW, OTHER = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture
def keys(settings):
    def use(*values):
        settings.PIADESK_ENCRYPTION_KEYS = list(values)
        crypto.reset_cache()

    yield use
    crypto.reset_cache()


def test_after_rotation_the_old_key_can_be_removed(keys):
    keys(OLD)
    connection = PSAConnectionFactory(secrets={"private_key": "privkey456"})
    url = "https://acme.webhook.office.com/webhookb2/secret"
    webhook = webhook_save(tenant=connection.tenant, style="teams", url=url)
    keys(NEW, OLD)
    call_command("rotate_encryption_keys")
    keys(NEW)
    connection.refresh_from_db()
    webhook.refresh_from_db()
    assert crypto.decrypt_secrets(connection.secrets_encrypted) == {"private_key": "privkey456"}
    assert webhook_url(webhook) == url


def test_unreadable_secrets_are_reported_and_left_alone(keys):
    keys(OTHER)
    lost = PSAConnectionFactory(secrets={"private_key": "x" * 8})
    token = lost.secrets_encrypted
    keys(NEW, OLD)
    with pytest.raises(CommandError, match=str(lost.pk)):
        call_command("rotate_encryption_keys")
    lost.refresh_from_db()
    assert lost.secrets_encrypted == token
