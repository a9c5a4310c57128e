"""piadesk settings: one module, read from the environment.

Working defaults for a laptop (SQLite under ``var/``) when ``DEBUG`` is on; loud errors for
missing or bad values when it is off (production). See README.md, "Configuration".
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Any

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PIADESK_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
# Rotation: put the new key in SECRET_KEY and the old one here until sessions and password
# reset links signed with it have expired (README, "Key rotation").
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Without autodiscovery: the admin is timelogging.admin's PiadeskAdminSite, on which every
    # page is registered explicitly (other apps' admin modules are never imported for it).
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    # Admin login lockout after repeated failures (per user name and per address).
    "axes",
    # Configuration history (timelogging/audit.py); its log entries are timelogging's own
    # ConfigChange rows (AUDITLOG_LOGENTRY_MODEL below), which carry the tenant.
    "auditlog",
    "timelogging",
    # psa.sandbox is added below only when PIADESK_SANDBOX is on: its models (fake PSA
    # accounts, members, tickets, received entries) have no place in a production database.
]

MIDDLEWARE = [
    # Outermost: counts every answer to the ingest endpoint, whatever answered it.
    "piadesk.ops.metrics.IngestMetricsMiddleware",
    # The database down (a restart, a failover): 503 with Retry-After, JSON under /api/.
    "piadesk.ops.unavailable.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # An oversized body under /api/ is a JSON 413 saying the limit (not Django's HTML 400).
    "timelogging.api.middleware.APIBodyLimitMiddleware",
    # Sessions, users and messages: the staff site's, not the API's (piadesk/site_only.py).
    "piadesk.site_only.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "piadesk.site_only.AuthenticationMiddleware",
    "piadesk.site_only.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records the signed-in user as the actor of configuration changes made in a request
    # (after AuthenticationMiddleware, which sets request.user).
    "piadesk.site_only.AuditlogMiddleware",
    # Last, as django-axes requires: answers a locked-out login with its lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out user name or address before the password is
# checked (and counts the failures); then Django's own users.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "piadesk.urls"
WSGI_APPLICATION = "piadesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "piadesk" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the zero-setup default; PostgreSQL (production) through DATABASE_URL.
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'piadesk.sqlite3'}"
# Persistent connections (60 s), checked before reuse: after a PostgreSQL restart a process's
# old connection is found dead and replaced instead of failing its next request (on PostgreSQL
# by a look at its socket, and SELECT 1 after a rest: piadesk/postgresql/base.py).
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_PREPARED_STATEMENTS", True
):
    # Parameters bound by the server, which lets the few statements the worker, the ingest
    # and the task queue run for every entry be prepared once per connection and not parsed
    # and planned again (services/rows.py prepared_cursor; everything else is planned for its
    # values, as Django leaves psycopg's automatic preparation off). CPU per posted entry at
    # L = 1 ms in one session: 15-16 ms without, 12-14 ms with. Turn it off behind a PgBouncer
    # in transaction pooling mode older than 1.21, which cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
# How long a PostgreSQL connection may rest before the health check asks the server (SELECT 1)
# rather than only looking at its socket (piadesk/postgresql/base.py); 0: ask before each use.
DATABASE_HEALTH_CHECK_IDLE_SECONDS = env_int("DATABASE_HEALTH_CHECK_IDLE_SECONDS", 10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "piadesk.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker share one SQLite file: WAL lets readers run beside the writer, IMMEDIATE
    # transactions take the write lock up front (no "database is locked" on lock upgrade), and
    # the timeout makes a writer wait for another instead of failing at once.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    if DATABASES["default"]["NAME"] != ":memory:":
        VAR_DIR.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True  # stored in UTC, always aware
# Pages show dates as 2026-05-01 and times with their zone, 2026-05-01 10:42 EDT: each
# tenant's pages are in its own zone (Tenant.time_zone; the API answers in UTC).
FORMAT_MODULE_PATH = ["piadesk.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on a missing directory

# --- Caches ---------------------------------------------------------------------------------
# Vendor discovery answers (ConnectWise codebase, Autotask zone, Halo tokens) are cached per
# process; every process can look them up again on its own, so no shared cache is required.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "piadesk"},
    # The worker clusters' heartbeats (django-q2 cluster stats), in the database so that every
    # web process can read them for /healthz and /metrics (piadesk/ops/heartbeat.py).
    "cluster_status": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "piadesk_cluster_status",
    },
}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["timelogging.api.auth.TenantAPIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["timelogging.api.auth.IsTenantClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["timelogging.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "timelogging.api.errors.exception_handler",
    # Per API key (timelogging/api/throttles.py): 429 with Retry-After beyond these.
    "DEFAULT_THROTTLE_CLASSES": [
        "timelogging.api.throttles.IngestThrottle",
        "timelogging.api.throttles.ReadThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "ingest": os.environ.get("PIADESK_API_RATE_INGEST", "600/minute"),
        "read": os.environ.get("PIADESK_API_RATE_READ", "300/minute"),
    },
    "UNAUTHENTICATED_USER": None,
}
# Seconds a web process trusts an API key it verified (timelogging/api/auth.py): a revoked key
# is refused by every process within this time. 0: every request reads the key.
PIADESK_API_CACHE_SECONDS = env_int("PIADESK_API_CACHE_SECONDS", 5)
if PIADESK_API_CACHE_SECONDS < 0:
    raise ImproperlyConfigured(
        f"PIADESK_API_CACHE_SECONDS must be 0 or more, got {PIADESK_API_CACHE_SECONDS}"
    )
SPECTACULAR_SETTINGS = {
    "TITLE": "piadesk API",
    "DESCRIPTION": "Report finished automation runs; piadesk logs the time entry in the PSA. "
    "Read the history of runs and time entries, and export it as CSV.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ serves Swagger UI's files from drf-spectacular-sidecar (our static files)
    # instead of a CDN: the docs work offline, and behind a strict CSP or a proxy.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Separate request and response components (RunReportRequest vs the Run answered), so
    # that generated clients do not send read-only fields nor miss required ones.
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Admin login lockout (django-axes) -------------------------------------------------------
# After PIADESK_LOGIN_FAILURE_LIMIT failed logins for one user name, or from one address, that
# user name (or address) is locked out for PIADESK_LOGIN_COOLOFF_MINUTES; a successful login
# before the limit resets the count. Superusers see and clear lockouts in the admin (Axes →
# Access attempts; deleting an attempt unlocks) or with `manage.py axes_reset`.
AXES_FAILURE_LIMIT = env_int("PIADESK_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("PIADESK_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "piadesk.security.client_ip"
# How many proxies in front of piadesk append to X-Forwarded-For: 0 (default) uses the
# connection's address; behind one reverse proxy set 1, or every login shares the proxy's.
PIADESK_PROXY_COUNT = env_int("PIADESK_PROXY_COUNT", 0)

# --- Secrets --------------------------------------------------------------------------------
# PSA credentials are encrypted with keys of their own, never SECRET_KEY. Comma-separated
# Fernet keys; the first encrypts, all decrypt (rotation). Generate one with
# `python manage.py generate_encryption_key`.
PIADESK_ENCRYPTION_KEYS = env_list("PIADESK_ENCRYPTION_KEYS", [])
if not PIADESK_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("PIADESK_ENCRYPTION_KEYS must be set when DEBUG is off.")
    # Development only: a key kept beside the SQLite database, made on first use.
    PIADESK_DEV_ENCRYPTION_KEY_FILE = VAR_DIR / "dev-encryption.key"

# --- Configuration history (django-auditlog; timelogging/audit.py) ---------------------------
# Log entries are timelogging.ConfigChange: auditlog's fields plus the tenant, so that each
# tenant's history is one indexed filter and never mixes with another tenant's.
AUDITLOG_LOGENTRY_MODEL = "timelogging.ConfigChange"
# auditlog's own migrations would still create its (swapped-out, unused) log entry table, with
# a foreign key that then stops Django from flushing the database on PostgreSQL. Its only model
# is swapped, so the app needs no migrations at all.
MIGRATION_MODULES = {"auditlog": None}
# A changed foreign key is recorded as what it named then ("ConnectWise (Acme)"), not an id
# that may point at nothing later.
AUDITLOG_USE_FK_STRING_REPRESENTATION = True
# Changes stored as JSON values (booleans and numbers stay typed) rather than their str().
AUDITLOG_STORE_JSON_CHANGES = True

# --- PSA ------------------------------------------------------------------------------------
# ConnectWise identifies each integration by a clientId (a GUID from developer.connectwise.com).
CONNECTWISE_CLIENT_ID = os.environ.get(
    "CONNECTWISE_CLIENT_ID", "00000000-0000-0000-0000-000000000000" if DEBUG else ""
)
# One PSA request's HTTP timeouts (connect, read), seconds.
PSA_HTTP_CONNECT_TIMEOUT = env_int("PSA_HTTP_CONNECT_TIMEOUT", 5)
PSA_HTTP_READ_TIMEOUT = env_int("PSA_HTTP_READ_TIMEOUT", 30)
# One posting attempt's deadline, seconds, over all its requests (discovery, look-ups, the look
# before a repost, the create), enforced by psa/http.py's session: no request is sent after it
# and each request's timeouts are cut to what is left. Q_CLUSTER timeout must exceed it.
PSA_ATTEMPT_DEADLINE_SECONDS = env_int("PSA_ATTEMPT_DEADLINE_SECONDS", 120)

# The local PSA stand-ins under /sandbox/ (demo and end-to-end tests). Off unless enabled; off,
# the app is not installed at all: no sandbox tables are migrated and no /sandbox/ URLs exist.
# (`make check-migrations` turns it on so that the sandbox's migrations are checked too.)
PIADESK_SANDBOX = env_bool("PIADESK_SANDBOX", False)
if PIADESK_SANDBOX:
    INSTALLED_APPS.append("psa.sandbox")
    # Injects the faults configured per vendor (psa/sandbox/faults.py); only /sandbox/ paths.
    MIDDLEWARE.append("psa.sandbox.faults.FaultInjectionMiddleware")

# Outbound policy (psa/outbound.py): PSA requests connect to public addresses only, plus these
# networks (CIDRs, comma-separated), e.g. an on-premises PSA at 10.20.0.0/16. The sandbox is
# served by piadesk itself on loopback, so enabling it allows loopback.
PIADESK_PSA_ALLOWED_NETWORKS = env_list("PIADESK_PSA_ALLOWED_NETWORKS", [])
if PIADESK_SANDBOX:
    PIADESK_PSA_ALLOWED_NETWORKS += ["127.0.0.0/8", "::1/128"]
for _network in PIADESK_PSA_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"PIADESK_PSA_ALLOWED_NETWORKS: {_network!r} is not a network, e.g. 10.20.0.0/16"
        ) from None

# --- Worker (django-q2, ORM broker) ---------------------------------------------------------
# Invariants (checked by tests/test_settings.py, the first two refused at start too):
# retry > timeout > one attempt's deadline (PSA_ATTEMPT_DEADLINE_SECONDS);
# failures acknowledged (piadesk decides retries from its own entry state, not the broker);
# successful tasks' results not kept (save_limit -1: each entry's attempts are its history, and
# django-q2's monitor locks and reads every kept result each time it saves one, so a positive
# limit costs time per task in proportion to it); task arguments are ids only.
Q_CLUSTER: dict[str, Any] = {
    "name": "piadesk",
    "orm": "default",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 240),
    "retry": env_int("Q_RETRY", 300),
    "ack_failures": True,
    "save_limit": env_int("Q_SAVE_LIMIT", -1),
    "poll": 0.5,
    # One statement takes up to `bulk` tasks, oldest first (piadesk/broker.py, PostgreSQL);
    # one per worker keeps each busy without holding more than the cluster can start.
    "broker_class": "piadesk.broker.OrmBroker",
    "bulk": env_int("Q_WORKERS", 2),
    "catch_up": False,
    # A worker process is replaced after `recycle` tasks, or after a task that took its
    # resident memory past `max_rss` (KB). django-q2's default, every 500 tasks, cost each
    # replacement a new database connection with its statements prepared again, new PSA
    # connections, and up to half a second of the worker's time (the sentinel notices on its
    # next guard cycle): a 20,000-entry drain ran 15 % slower per entry than a 1,000-entry one.
    # The memory limit keeps what recycling is for: a worker that grows is replaced (0: no
    # limit; a limit under a worker's own size would replace it after every task).
    "recycle": env_int("Q_RECYCLE", 10_000),
    "max_rss": env_int("Q_MAX_RSS_KB", 262_144) or None,
    "label": "Task queue",
    # Where the clusters save their heartbeat statistics (see CACHES above).
    "cache": "cluster_status",
}
if not 0 < PSA_ATTEMPT_DEADLINE_SECONDS < Q_CLUSTER["timeout"] < Q_CLUSTER["retry"]:
    # A task killed mid-attempt, or delivered again while a first delivery still posts, would
    # leave entries to the lease's rescue: each attempt must end within the task's time.
    raise ImproperlyConfigured(
        "Need 0 < PSA_ATTEMPT_DEADLINE_SECONDS < Q_TIMEOUT < Q_RETRY; got "
        f"{PSA_ATTEMPT_DEADLINE_SECONDS} s, {Q_CLUSTER['timeout']} s and {Q_CLUSTER['retry']} s"
    )

if Q_CLUSTER["recycle"] < 1:
    raise ImproperlyConfigured(f"Q_RECYCLE must be 1 or more tasks; got {Q_CLUSTER['recycle']}")
if Q_CLUSTER["max_rss"] is not None and Q_CLUSTER["max_rss"] < 131_072:
    raise ImproperlyConfigured(
        "Q_MAX_RSS_KB must be 0 (no limit) or at least 131072 (128 MB; a worker takes about "
        f"85 MB before its first task); got {Q_CLUSTER['max_rss']}"
    )

# --- Delivery (timelogging/services/delivery.py) --------------------------------------------
# Exponential backoff with jitter between attempts, capped; after PIADESK_MAX_ATTEMPTS tries or
# PIADESK_MAX_ENTRY_AGE_HOURS, an entry is failed and shown to staff.
PIADESK_RETRY_BASE_SECONDS = env_int("PIADESK_RETRY_BASE_SECONDS", 30)
PIADESK_RETRY_MAX_SECONDS = env_int("PIADESK_RETRY_MAX_SECONDS", 3600)
PIADESK_MAX_ATTEMPTS = env_int("PIADESK_MAX_ATTEMPTS", 10)
PIADESK_MAX_ENTRY_AGE_HOURS = env_int("PIADESK_MAX_ENTRY_AGE_HOURS", 72)
# An entry still "posting" after this long was abandoned by a worker that died: longer than the
# task timeout, so that the cluster has killed any worker still holding it.
PIADESK_POSTING_LEASE_SECONDS = env_int("PIADESK_POSTING_LEASE_SECONDS", Q_CLUSTER["timeout"] + 30)
# How often the sweep (re-)enqueues due entries and rescues abandoned ones: applied to its
# django-q2 schedule after migrate and when a qcluster worker starts
# (timelogging.services.delivery.sweep_schedule_sync).
PIADESK_SWEEP_MINUTES = env_int("PIADESK_SWEEP_MINUTES", 1)
if PIADESK_SWEEP_MINUTES < 1:
    raise ImproperlyConfigured(
        f"PIADESK_SWEEP_MINUTES must be a whole number of minutes, 1 or more; got "
        f"{PIADESK_SWEEP_MINUTES}"
    )

# --- Staff notices (timelogging/services/notices.py) ------------------------------------------
# E-mail from EMAIL_URL (dj-email-url): smtp://user:password@host:587/?tls=True (user and
# password URL-encoded), smtps://…:465, console:, memory: (tests), dummy:. Without it: the
# console under DEBUG (make run prints the messages), else SMTP on localhost:25.
EMAIL_URL = os.environ.get("EMAIL_URL", "") or ("console:" if DEBUG else "smtp://localhost:25")
if EMAIL_URL.split(":", 1)[0] not in dj_email_url.SCHEMES:
    raise ImproperlyConfigured(
        f"EMAIL_URL must start with one of {', '.join(sorted(dj_email_url.SCHEMES))}: "
        f"got {EMAIL_URL.split(':', 1)[0]!r}"
    )
try:
    vars().update(dj_email_url.parse(EMAIL_URL))
except ValueError as exc:  # e.g. a port that is not a number
    raise ImproperlyConfigured(f"EMAIL_URL is not a valid e-mail URL: {exc}") from None
EMAIL_TIMEOUT: int | None = vars().get("EMAIL_TIMEOUT")  # set from EMAIL_URL just above
if not EMAIL_TIMEOUT:
    EMAIL_TIMEOUT = 10  # a mail server that hangs must not hold a worker
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "piadesk@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The address staff open piadesk at: notices link to the admin page that fixes the problem.
PIADESK_BASE_URL = os.environ.get("PIADESK_BASE_URL", "http://127.0.0.1:8000" if DEBUG else "")
# A tenant's staff are told when its oldest due entry has waited this long (and once a day at
# most while it stays so).
PIADESK_NOTIFY_QUEUE_DELAY_MINUTES = env_int("PIADESK_NOTIFY_QUEUE_DELAY_MINUTES", 60)

# --- Health and metrics (piadesk/ops/) -------------------------------------------------------
# /healthz reports "degraded" when the oldest due entry has waited longer than this.
PIADESK_HEALTH_MAX_DUE_SECONDS = env_int("PIADESK_HEALTH_MAX_DUE_SECONDS", 900)
# When set, /metrics requires "Authorization: Bearer <token>".
PIADESK_METRICS_TOKEN = os.environ.get("PIADESK_METRICS_TOKEN", "")

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

if not DEBUG:
    # Production sits behind a reverse proxy that terminates TLS (deploy/nginx.conf) and says
    # so in X-Forwarded-Proto; the proxy must set that header itself, never pass a client's.
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Plain HTTP is redirected to HTTPS, except the probes a monitor on the host or the load
    # balancer sends to the app server directly (they carry no cookies and no secrets).
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    if PIADESK_SANDBOX:
        # The stand-in PSAs are called by the worker over plain HTTP on this host.
        SECURE_REDIRECT_EXEMPT.append(r"^sandbox/")
    # HSTS: browsers use HTTPS only for this host for a year. includeSubDomains concerns names
    # under piadesk's own host name only; preload has no effect until the domain's owner
    # submits it to the browsers' preload list. Set SECURE_HSTS_SECONDS=0 to switch it off.
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# The technical 500 page (DEBUG) hides DATABASE_URL too: it carries the database password.
DEFAULT_EXCEPTION_REPORTER_FILTER = "piadesk.security.SettingsFilter"
