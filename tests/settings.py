"""Settings for the test suite: piadesk's own settings with test-only values.

DATABASE_URL still decides the database (SQLite by default, PostgreSQL in CI).
"""

import os

os.environ.setdefault("DEBUG", "1")
# A fixed key so tests never depend on a developer's var/ directory.
os.environ.setdefault("PIADESK_ENCRYPTION_KEYS", "wYx7rj0WgYxcMq0dRC6Kx3hZ7nB8tmpd1bMuGpVJ0jQ=")
os.environ.setdefault("PIADESK_SANDBOX", "1")

from piadesk.settings import *  # noqa: E402,F403

# The tests' PSA stand-ins (the sandbox on live_server, fake servers) listen on loopback:
# allowed explicitly, as an operator would allow an on-premises PSA's network.
PIADESK_PSA_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]

# Throttling is proven by tests/timelogging/test_api_throttling.py with its own low rates; the
# rest of the suite (the schema fuzzing makes hundreds of requests with one key) is not limited.
REST_FRAMEWORK = {  # noqa: F405
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"ingest": "100000/minute", "read": "100000/minute"},
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file (not :memory:) so that end-to-end tests can share it with a real qcluster; one per
    # test process so that concurrent runs on one machine do not trample each other.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
else:
    # The same on PostgreSQL: several checkouts (or CI and a developer) may run the suite on one
    # server at once, and pytest-django's default name (test_<db>) would be shared by all.
    DATABASES["default"]["TEST"] = {"NAME": f"test_piadesk_{os.getpid()}"}  # noqa: F405
