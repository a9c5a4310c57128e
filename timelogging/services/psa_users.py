"""The PSA's users as staff pick them in the admin: searched, and checked before saving.

Reads only (nothing is written to the PSA or the database), but they cost requests against the
connection's budget, so the list is fetched once per connection and kept briefly in Django's
cache: staff typing in a picker search the cached list, not the PSA.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

from psa.base import PSAError, PSAUser
from timelogging.models import PSAConnection
from timelogging.services.connections import connection_lookup_backend

logger = logging.getLogger(__name__)

USERS_CACHE_SECONDS = 60
MAX_RESULTS = 50
MAX_SEARCH_CHARS = 100


def _cache_key(connection: PSAConnection) -> str:
    # updated_at is part of the key: new credentials (or another site) are a new list at once.
    return f"piadesk:psa-users:{connection.pk}:{connection.updated_at.timestamp():.6f}"


def psa_users_cached(*, connection: PSAConnection) -> list[PSAUser]:
    """Every active user of the connection's PSA, at most ``USERS_CACHE_SECONDS`` old.

    Raises ``PSAError`` (see ``connection_lookup_backend``) when the PSA cannot be read;
    failures are not cached, so the next search tries again.
    """
    key = _cache_key(connection)
    cached = cache.get(key)
    if cached is not None:
        return [PSAUser(ref=ref, name=name, email=email) for ref, name, email in cached]
    backend = connection_lookup_backend(connection)
    try:
        users = backend.list_users("")
    finally:
        backend.http.close()
    # Plain tuples: vendor facts in ``extra`` are not needed by a picker.
    cache.set(key, [(u.ref, u.name, u.email) for u in users], USERS_CACHE_SECONDS)
    return [PSAUser(ref=u.ref, name=u.name, email=u.email) for u in users]


def psa_users_search(
    *, connection: PSAConnection, search: str = "", limit: int = MAX_RESULTS
) -> list[PSAUser]:
    """Active users whose name, e-mail or ref contain every word of ``search`` (any case).

    Matched here rather than by the vendor's own search, which differs per vendor (HaloPSA's
    is fuzzy, ConnectWise's ``like`` misses names split over first/last name) and would cost
    a request per keystroke.
    """
    words = search[:MAX_SEARCH_CHARS].casefold().split()
    matches = []
    for user in psa_users_cached(connection=connection):
        haystack = f"{user.name} {user.email} {user.ref}".casefold()
        if all(word in haystack for word in words):
            matches.append(user)
            if len(matches) >= limit:
                break
    return matches


def psa_user_get(*, connection: PSAConnection, ref: str) -> PSAUser:
    """The user named by ``ref``, asked of the PSA itself (not the cache): ``NotFoundError``
    when the PSA has none, another ``PSAError`` when it cannot be asked."""
    backend = connection_lookup_backend(connection)
    try:
        return backend.get_user(ref)
    finally:
        backend.http.close()


def psa_user_check(*, connection: PSAConnection, ref: str) -> PSAUser | PSAError:
    """``psa_user_get``'s answer, with a failure returned rather than raised, so that the
    look-up can be made ahead of a form's validation and its outcome handed to the form.

    ``NotFoundError``: the PSA has no such user; any other ``PSAError``: it could not be
    asked. A bug in a backend is logged and reported as a ``PSAError`` too: a look-up made for
    staff must not turn their page into a 500.
    """
    try:
        return psa_user_get(connection=connection, ref=ref)
    except PSAError as exc:
        return exc
    except Exception:
        logger.exception("looking up PSA user %r on connection %s failed", ref, connection.pk)
        return PSAError("The look-up failed unexpectedly; the server log has the details.")
