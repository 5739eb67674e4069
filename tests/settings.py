"""Test settings: the real Postgres and Redis, but separate Redis databases for cache and broker, and a
worker subprocess that uses the test database. Every timing (stale-pending window, attempt budget,
retry delays, reconciler interval) is production's: a test that needs another value overrides it
locally and says why."""

import os

from orchestrator.settings import *  # noqa: F403
from orchestrator.settings import DATABASES, REDIS_URL, default_installation_id

_redis_base = REDIS_URL.rsplit("/", 1)[0]
CACHES["default"]["LOCATION"] = f"{_redis_base}/{os.environ.get('TEST_REDIS_CACHE_DB', '1')}"  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = "test"  # noqa: F405
# The chaos suite points its worker at a private Redis it may restart (TEST_CELERY_BROKER_URL).
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL") or (
    f"{_redis_base}/{os.environ.get('TEST_REDIS_BROKER_DB', '2')}"
)

# TEST_DATABASE_NAME lets two test sessions share one Postgres server (say, CI beside a developer).
TEST_DATABASE_NAME = os.environ.get("TEST_DATABASE_NAME", "test_" + DATABASES["default"]["NAME"])
DATABASES["default"]["TEST"] = {"NAME": TEST_DATABASE_NAME}
# A Celery worker started by the tests runs in another process against the test database.
if os.environ.get("ORCHESTRATOR_TEST_WORKER"):
    DATABASES["default"]["NAME"] = TEST_DATABASE_NAME

DATABASES["default"]["CONN_MAX_AGE"] = 0  # live-server threads must not keep the test database open
STORE_BASE_DOMAIN = "stores.test"
# Store ids restart with every test database; a per-run prefix keeps this run's namespaces apart
# from a previous run's that may still be terminating on a long-lived cluster.
STORE_NAMESPACE_PREFIX = os.environ.setdefault("TEST_NAMESPACE_PREFIX", f"t{os.getpid() % 100000}")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests only
LOG_FORMAT = "text"
WORKER_HEARTBEAT_FILE = os.environ.get("WORKER_HEARTBEAT_FILE", "/tmp/store-orchestrator-test-heartbeat")
# This run's own installation id (its namespace prefix is its own), the same in the test process and
# in the worker subprocesses it starts.
ORCHESTRATOR_INSTALLATION_ID = os.environ.get("ORCHESTRATOR_INSTALLATION_ID") or default_installation_id(
    {**DATABASES["default"], "NAME": TEST_DATABASE_NAME}, STORE_NAMESPACE_PREFIX, STORE_BASE_DOMAIN
)
