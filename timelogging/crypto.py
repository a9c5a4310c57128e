"""Encryption of PSA credentials at rest, with keys of their own (never SECRET_KEY).

Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``; ``MultiFernet`` so that keys can be
rotated: the first key of ``PIADESK_ENCRYPTION_KEYS`` encrypts, every key decrypts. A wrong or
missing key fails closed with ``SecretsUnavailable`` instead of returning garbage.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretsUnavailable(Exception):
    """The stored secrets cannot be decrypted with the configured keys."""


def _dev_key() -> str:
    path = settings.PIADESK_DEV_ENCRYPTION_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


@lru_cache(maxsize=1)
def _fernets() -> tuple[Fernet, ...]:
    keys = list(settings.PIADESK_ENCRYPTION_KEYS) or [_dev_key()]
    try:
        return tuple(Fernet(key.encode()) for key in keys)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "PIADESK_ENCRYPTION_KEYS holds an invalid Fernet key "
            "(generate one with `python manage.py generate_encryption_key`)."
        ) from exc


def _fernet() -> MultiFernet:
    return MultiFernet(list(_fernets()))


def encrypt_secrets(values: dict[str, str]) -> str:
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt_secrets(token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise SecretsUnavailable(
            "The stored PSA credentials cannot be decrypted with the configured "
            "PIADESK_ENCRYPTION_KEYS; re-enter them or restore the key."
        ) from exc


def secrets_token(stored: str, values: dict[str, str]) -> str:
    """The token to store for ``values``: ``stored`` itself when it already holds exactly them
    under the current (first) key, a new one otherwise.

    Fernet tokens differ on every encryption (random IV): re-encrypting unchanged secrets on
    each save would make every save look like a credentials change in the configuration
    history. A token made with an older key is renewed, so saving still rotates keys.
    """
    if stored:
        try:
            if json.loads(_fernets()[0].decrypt(stored.encode())) == values:
                return stored
        except InvalidToken:
            pass  # another key, or not decryptable at all: encrypt afresh
    return encrypt_secrets(values)


def reencrypt_token(token: str) -> str:
    """The same secrets encrypted with the first key (key rotation); raises
    ``SecretsUnavailable`` when no configured key decrypts the token."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretsUnavailable("No configured key decrypts these secrets.") from exc


def reset_cache() -> None:
    """For tests that change the keys."""
    _fernets.cache_clear()
