"""Settings, read from environment variables with safe development defaults.

Every variable is listed in README.md ("Settings"). Production refuses to start
without a real secret key; development gets a throwaway one.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import quote

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_labels(name: str, default: str = "") -> dict[str, str]:
    """A comma list of Kubernetes labels, "key=value,key=value"; anything else stops startup."""
    labels = {}
    for item in env_list(name, default):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ImproperlyConfigured(f"{name}: {item!r} is not key=value (e.g. app.kubernetes.io/name=traefik).")
        labels[key.strip()] = value.strip()
    return labels


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or env_bool("DJANGO_DEVELOPMENT", True)):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEVELOPMENT is off.")
    # A development-only key; production sets DJANGO_SECRET_KEY from a Kubernetes Secret.
    SECRET_KEY = "development-only-not-secret"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django_htmx",
    "django_filters",
    "stores_app",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "stores_app.middleware.RequestSizeMiddleware",
    "stores_app.middleware.OutageMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "orchestrator.urls"
WSGI_APPLICATION = "orchestrator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _database_url() -> str:
    if env("DATABASE_URL"):
        return env("DATABASE_URL")
    user = quote(env("POSTGRES_USER", "orchestrator"))
    password = env("POSTGRES_PASSWORD")
    auth = f"{user}:{quote(password)}" if password else user
    host = env("POSTGRES_HOST", "127.0.0.1")
    port = env("POSTGRES_PORT", "54320")
    return f"postgres://{auth}@{host}:{port}/{env('POSTGRES_DB', 'orchestrator')}"


DATABASES = {"default": dj_database_url.parse(_database_url(), conn_max_age=60, conn_health_checks=True)}
# An unreachable server must fail a request quickly (answered 503), not hold a web thread for minutes.
# A store's lock is a session lock on a worker's connection. TCP keepalives on both ends (the client's
# libpq settings, and the server's for this session via `options`) end a connection whose peer is gone
# (a lost node) within about a minute, so its lock does not outlive it for hours.
DATABASES["default"].setdefault("OPTIONS", {}).update(
    {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "options": "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
    }
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_url() -> str:
    if env("REDIS_URL"):
        return env("REDIS_URL")
    password = env("REDIS_PASSWORD")
    auth = f":{quote(password)}@" if password else ""
    return f"redis://{auth}{env('REDIS_HOST', '127.0.0.1')}:{env('REDIS_PORT', '63790')}/0"


REDIS_URL = _redis_url()
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "orchestrator"),
        "TIMEOUT": 300,
        # Rate limits are checked in every request: a Redis that does not answer must fail fast.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a rule on passwords: Django tells validators when a password changes, and this one revokes
    # the user's API tokens then, whichever page or command changed it.
    {"NAME": "stores_app.api.tokens.RevokeTokensOnPasswordChange"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "store-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Oversized bodies are refused before any parsing (answered 413 by RequestErrorMiddleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 64 * 1024)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_int("TRUSTED_PROXY_COUNT", 0) else None
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- REST API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "stores_app.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["stores_app.ratelimits.UserRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "stores_app.api.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "stores_app.api.errors.exception_handler",
}
# Tokens are stored hashed. A token expires after API_TOKEN_IDLE_DAYS without use (each use pushes the
# expiry out again, at most once a minute) and at the latest API_TOKEN_MAX_AGE_DAYS after it was issued,
# so a leaked token does not work for ever; a password change revokes all of the user's tokens
# (stores_app.api.tokens.RevokeTokensOnPasswordChange, listed in AUTH_PASSWORD_VALIDATORS).
API_TOKEN_IDLE_DAYS = env_int("API_TOKEN_IDLE_DAYS", 30)
API_TOKEN_MAX_AGE_DAYS = env_int("API_TOKEN_MAX_AGE_DAYS", 90)
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=API_TOKEN_IDLE_DAYS),
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": dt.timedelta(days=API_TOKEN_MAX_AGE_DAYS),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Store Orchestrator API",
    "DESCRIPTION": "Create, watch, retry, upgrade and delete WooCommerce and Medusa stores; roll chart versions "
    "out to the fleet (staff).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "stores_app.api.schema.closed_request_bodies",
    ],
    # Upgrades, rollouts and their stores each have a "state" of their own.
    "ENUM_NAME_OVERRIDES": {
        "StoreUpgradeStateEnum": "stores_app.models.StoreUpgrade.State",
        "RolloutStateEnum": "stores_app.models.Rollout.State",
        "RolloutItemStateEnum": "stores_app.models.RolloutItem.State",
    },
}

# --- Stores ---------------------------------------------------------------------
STORE_BASE_DOMAIN = env("STORE_BASE_DOMAIN", "stores.local.dev")
STORE_URL_SCHEME = env("STORE_URL_SCHEME", "https")
STORE_INGRESS_CLASS = env("STORE_INGRESS_CLASS", "nginx")
# What a store's NetworkPolicies admit to its web pod: the ingress controller's namespaces (by name)
# and, to narrow them, its pods' labels; e.g. k3s' bundled Traefik: kube-system with
# app.kubernetes.io/name=traefik.
STORE_INGRESS_NAMESPACES = env_list("STORE_INGRESS_NAMESPACES", "ingress-nginx")
if not STORE_INGRESS_NAMESPACES:
    raise ImproperlyConfigured("STORE_INGRESS_NAMESPACES is empty: name the ingress controller's namespace(s).")
STORE_INGRESS_POD_LABELS = env_labels("STORE_INGRESS_POD_LABELS")
STORE_TLS_CLUSTER_ISSUER = env("STORE_TLS_CLUSTER_ISSUER")
STORE_CHARTS_DIR = Path(env("STORE_CHARTS_DIR", str(BASE_DIR / "charts")))
# Extra values files per engine (comma list of paths), e.g. to point a chart at a local image.
STORE_EXTRA_VALUES = {
    "woocommerce": env_list("STORE_WOOCOMMERCE_VALUES"),
    "medusa": env_list("STORE_MEDUSA_VALUES"),
}
STORES_PER_USER = env_int("STORES_PER_USER", 10)
# Namespaces and releases are "<prefix>-<id>-<slug>"; a DNS label of at most 12 characters.
STORE_NAMESPACE_PREFIX = env("STORE_NAMESPACE_PREFIX", "store")
# Namespaces are created with a RoleBinding to this ClusterRole for the orchestrator's
# ServiceAccount (least privilege; see deploy/helm/README.md). Empty: not bound.
STORE_NAMESPACE_CLUSTERROLE = env("STORE_NAMESPACE_CLUSTERROLE")
ORCHESTRATOR_SERVICE_ACCOUNT = env("ORCHESTRATOR_SERVICE_ACCOUNT")  # "namespace:name"
# The web process runs as a ServiceAccount of its own ("namespace:name") that may only read store
# credentials Secrets: the worker binds this ClusterRole to it in each store namespace. Empty: not bound.
STORE_CREDENTIALS_CLUSTERROLE = env("STORE_CREDENTIALS_CLUSTERROLE")
WEB_SERVICE_ACCOUNT = env("WEB_SERVICE_ACCOUNT")
STORE_SMOKE_TEST = env_bool("STORE_SMOKE_TEST", True)


def default_installation_id(database: dict, namespace_prefix: str, base_domain: str) -> str:
    """A stable id for this installation when none is set: the same database, namespace prefix and base
    domain are the same installation; anything else is another one."""
    import hashlib

    where = f"{database.get('HOST')}:{database.get('PORT')}/{database.get('NAME')}|{namespace_prefix}|{base_domain}"
    return "inst-" + hashlib.sha256(where.encode()).hexdigest()[:16]


# Labels every store namespace (store-orchestrator.io/installation); adoption and the orphan scan only
# consider namespaces carrying this installation's value. Set it explicitly where two installations
# could share a database name, prefix and domain (the chart sets it).
ORCHESTRATOR_INSTALLATION_ID = env("ORCHESTRATOR_INSTALLATION_ID") or default_installation_id(
    DATABASES["default"], STORE_NAMESPACE_PREFIX, STORE_BASE_DOMAIN
)

HELM_BIN = env("HELM_BIN", "helm")
KUBECONFIG = env("KUBECONFIG")
# helm's own check of a rendered release against the cluster's OpenAPI schema, before it applies it.
# 0 skips it: half of helm's CPU per install (0.59 → 0.28 CPU-s, tools/bench), and the API server checks
# every object anyway. On by default until the recovery tests that kill helm in its pending window pass
# with the shorter window it gives (they did not yet).
HELM_OPENAPI_VALIDATION = env_bool("HELM_OPENAPI_VALIDATION", True)
# Timeouts are nested so the inner one always fires first:
# helm < task soft limit < task hard limit < broker visibility timeout.
HELM_TIMEOUT_SECONDS = env_int("HELM_TIMEOUT_SECONDS", 300)
HELM_TEST_TIMEOUT_SECONDS = env_int("HELM_TEST_TIMEOUT_SECONDS", 180)
TASK_SOFT_TIME_LIMIT = HELM_TIMEOUT_SECONDS + 60
TASK_TIME_LIMIT = TASK_SOFT_TIME_LIMIT + 60
# A pending-* release that no helm operation of ours accounts for (an operator's own helm) is left
# alone this long; one our own lost worker left is repaired at once (stores_app/decisions.py).
HELM_STALE_PENDING_SECONDS = env_int("HELM_STALE_PENDING_SECONDS", HELM_TIMEOUT_SECONDS + 60)
# How many times a store's own helm operation may be cut off (the worker running it lost) before the
# store fails: a store whose work kills its worker must not take workers down for ever.
PROVISION_MAX_ATTEMPTS = env_int("PROVISION_MAX_ATTEMPTS", 5)
# Temporary problems (an unreachable API server, a busy release, a killed helm) are retried with a
# growing delay (2 s up to 30 s) for this long before the store fails: bounded by time, not a count.
TEMPORARY_ERROR_TIMEOUT_SECONDS = env_int("TEMPORARY_ERROR_TIMEOUT_SECONDS", 15 * 60)
# Every worker process writes a heartbeat this often; one silent for WORKER_LOST_SECONDS is lost (its
# helm operation is repaired, its store locks taken over).
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 5)
WORKER_LOST_SECONDS = env_int("WORKER_LOST_SECONDS", 30)
READY_TIMEOUT_SECONDS = env_int("READY_TIMEOUT_SECONDS", 20 * 60)
READY_CHECK_INTERVAL_SECONDS = env_int("READY_CHECK_INTERVAL_SECONDS", 2)
TEARDOWN_TIMEOUT_SECONDS = env_int("TEARDOWN_TIMEOUT_SECONDS", 10 * 60)
RECONCILE_INTERVAL_SECONDS = env_int("RECONCILE_INTERVAL_SECONDS", 60)
# Upgrades (stores_app/upgrades.py): how long a new revision may take to pass the health gate (workloads
# ready, its setup Job complete, helm test) before it is rolled back, and how long the rollback may take
# to be healthy again before the store fails. A rollout looks at its waves at least this often.
UPGRADE_HEALTH_TIMEOUT_SECONDS = env_int("UPGRADE_HEALTH_TIMEOUT_SECONDS", 10 * 60)
ROLLBACK_TIMEOUT_SECONDS = env_int("ROLLBACK_TIMEOUT_SECONDS", 10 * 60)
ROLLOUT_CHECK_INTERVAL_SECONDS = env_int("ROLLOUT_CHECK_INTERVAL_SECONDS", 10)
# In the pod /tmp is a private emptyDir; the probe reads the same path.
WORKER_HEARTBEAT_FILE = env("WORKER_HEARTBEAT_FILE", "/tmp/store-orchestrator-worker-heartbeat")  # noqa: S108

# --- Abuse limits and operator endpoints -----------------------------------------
# Per user (per address when anonymous). Writes (anything but GET/HEAD/OPTIONS) keep the product's
# 100 per 15 minutes; reads get their own, larger bucket, so a dashboard left open (the store page
# polls every 2 s while a store changes, and only then) is never throttled, while scraping is still bounded.
# RATELIMIT_DEFAULT is the earlier name of the write limit and still read.
RATELIMIT_WRITE = env("RATELIMIT_WRITE", env("RATELIMIT_DEFAULT", "100/15m"))
RATELIMIT_READ = env("RATELIMIT_READ", "2400/15m")
RATELIMIT_CREATE = env("RATELIMIT_CREATE", "10/15m")
RATELIMIT_LOGIN = env("RATELIMIT_LOGIN", "20/15m")  # per address: login forms (admin too), token requests
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
RATELIMIT_USE_CACHE = "default"
# How many proxies in front of us append to X-Forwarded-For; 0 trusts none of it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
RATELIMIT_IP_META_KEY = "stores_app.ratelimits.client_address"
# /metrics answers a scraper that sends this token (`Authorization: Bearer <token>`, or HTTP Basic with
# it as the password) and signed-in staff; nobody else. Empty: staff only.
METRICS_TOKEN = env("METRICS_TOKEN")
# Store aggregates are computed at most once per this many seconds, however many scrapers and pods.
METRICS_CACHE_SECONDS = env_int("METRICS_CACHE_SECONDS", 10)
# While Postgres or Redis cannot be reached, requests are answered 503 with this Retry-After.
OUTAGE_RETRY_AFTER_SECONDS = env_int("OUTAGE_RETRY_AFTER_SECONDS", 30)
# The worker's liveness probe (manage.py worker_health) also fails when a command a task started
# (helm) has run this long: past helm's own timeout plus a margin it is hung, and its slot with it.
WORKER_STUCK_COMMAND_SECONDS = env_int(
    "WORKER_STUCK_COMMAND_SECONDS", max(HELM_TIMEOUT_SECONDS, HELM_TEST_TIMEOUT_SECONDS) + 60
)

# --- Dashboard, health watching and owner notifications ---------------------------
# The store list and a store's page poll this often while a store is changing (pending, provisioning,
# deleting); a running store's health panel polls HEALTH_POLL; settled pages stop polling.
DASHBOARD_POLL_SECONDS = env_int("DASHBOARD_POLL_SECONDS", 2)
DASHBOARD_HEALTH_POLL_SECONDS = env_int("DASHBOARD_HEALTH_POLL_SECONDS", 15)
DASHBOARD_PAGE_SIZE = env_int("DASHBOARD_PAGE_SIZE", 50)
# Where owners reach the dashboard; links in notification emails start with it.
DASHBOARD_URL = env("DASHBOARD_URL", "http://127.0.0.1:8000").rstrip("/")
# The worker looks at every running store (ready or degraded) about this often, queueing at most
# HEALTH_REFRESH_BATCH refreshes per pass (stalest first), so a large fleet costs bounded work per pass.
HEALTH_REFRESH_SECONDS = env_int("HEALTH_REFRESH_SECONDS", 60)
HEALTH_REFRESH_BATCH = env_int("HEALTH_REFRESH_BATCH", 50)
# What a snapshot keeps: the log tail of the store's main container (bytes after redaction, lines asked
# for) and the namespace's latest events.
HEALTH_LOG_TAIL_BYTES = env_int("HEALTH_LOG_TAIL_BYTES", 8192)
HEALTH_LOG_TAIL_LINES = env_int("HEALTH_LOG_TAIL_LINES", 200)
HEALTH_EVENTS = env_int("HEALTH_EVENTS", 10)
# Owners are emailed when a store becomes ready, fails, degrades or recovers; the notifier looks for
# such changes this often (and at once after a degradation it recorded itself).
NOTIFY_INTERVAL_SECONDS = env_int("NOTIFY_INTERVAL_SECONDS", 15)
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5)
# Changes older than this when the notifier first sees them (it was not running) are not mailed.
NOTIFY_MAX_AGE_SECONDS = env_int("NOTIFY_MAX_AGE_SECONDS", 3600)
# Email: SMTP when EMAIL_HOST is set, else printed to the console (development). Tests use locmem.
EMAIL_HOST = env("EMAIL_HOST")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Store Orchestrator <stores@localhost>")

# --- Celery ---------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT
# socket_connect_timeout: a publish (on commit of a create) must not hang on an unreachable Redis; the
# store is saved either way and the reconciler queues it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": max(3600, TASK_TIME_LIMIT * 4), "socket_connect_timeout": 5}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "reconcile-stores": {
        "task": "stores_app.tasks.reconcile_stores",
        "schedule": float(RECONCILE_INTERVAL_SECONDS),
        "options": {"expires": RECONCILE_INTERVAL_SECONDS},
    },
    "refresh-store-health": {
        "task": "stores_app.tasks.refresh_health_pass",
        "schedule": float(HEALTH_REFRESH_SECONDS),
        "options": {"expires": HEALTH_REFRESH_SECONDS},
    },
    "notify-owners": {
        "task": "stores_app.tasks.notify_owners",
        "schedule": float(NOTIFY_INTERVAL_SECONDS),
        "options": {"expires": NOTIFY_INTERVAL_SECONDS},
    },
}

# --- Logging --------------------------------------------------------------------
LOG_FORMAT = env("LOG_FORMAT", "text")
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # pyhelm3 logs each helm command line; values travel on stdin, never argv.
        "pyhelm3": {"level": "WARNING"},
        "kubernetes": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
