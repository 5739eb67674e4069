"""Shared fixtures: users (owner, teammate, stranger, staff), CSRF-checking clients, API clients
with real tokens, a real Celery worker process (under the orchestrator's least-privilege
ServiceAccount, as in production), and helpers to wait for a store's state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client

pytest_plugins = ["tests.plugins.simcluster", "tests.deploy.identity"]

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _clean_redis_cache():
    """Rate-limit counters live in the cache; every test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session", autouse=True)
def _empty_broker():
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def make_user(django_user_model, username, **extra):
    return django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def owner(django_user_model):
    return make_user(django_user_model, "owner")


@pytest.fixture
def stranger(django_user_model):
    return make_user(django_user_model, "stranger")


@pytest.fixture
def staff(django_user_model):
    return make_user(django_user_model, "operator", is_staff=True, is_superuser=True)


def login_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_post(client: Client, path: str, data=None, **kwargs):
    """POST the way a browser does: fetch a page first for the CSRF cookie, then send the token."""
    client.get("/")
    token = client.cookies["csrftoken"].value
    return client.post(path, data or {}, HTTP_X_CSRFTOKEN=token, **kwargs)


@pytest.fixture
def owner_client(owner):
    return login_client(owner)


@pytest.fixture
def stranger_client(stranger):
    return login_client(stranger)


@pytest.fixture
def staff_client(staff):
    return login_client(staff)


def token_client(user):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def owner_api(owner):
    return token_client(owner)


@pytest.fixture
def stranger_api(stranger):
    return token_client(stranger)


@pytest.fixture
def staff_api(staff):
    return token_client(staff)


# --- a real Celery worker ---------------------------------------------------------------


class WorkerProcess:
    """A `celery worker` subprocess on the test database, broker and cluster; killable for crash tests."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 2):
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "orchestrator",
                "worker",
                "--loglevel=INFO",
                "--pool=prefork",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        heartbeat = Path(self.env["WORKER_HEARTBEAT_FILE"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early; see {self.log_path}")
            if heartbeat.exists() and heartbeat.stat().st_mtime > time.time() - 10:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"celery worker did not start in 60 s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the worker and its children at once, as a crashed node would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_env(identity, tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A worker's environment: the orchestrator's identity (its ServiceAccount's kubeconfig and the
    settings the chart sets), the test database, broker and settings, and a private heartbeat file."""
    env = dict(identity.env)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        ORCHESTRATOR_TEST_WORKER="1",
        WORKER_HEARTBEAT_FILE=str(tmp_path / "worker-heartbeat"),
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@pytest.fixture
def as_orchestrator(orchestrator_identity, kube_cluster, settings):
    """This process's code (tests, the web side) configured like the chart configures the pods, so rows
    it writes and namespaces it checks match what the worker under the identity does."""
    from stores_app import helm as helm_module
    from stores_app.kube import reset_client

    for key, value in orchestrator_identity.settings().items():
        setattr(settings, key, value)
    settings.HELM_BIN = kube_cluster.helm
    settings.KUBECONFIG = orchestrator_identity.kubeconfig
    reset_client()
    helm_module.reset_clients()
    yield orchestrator_identity
    reset_client()
    helm_module.reset_clients()


@pytest.fixture
def celery_worker(as_orchestrator, transactional_db, tmp_path):
    """A real worker for one test (transactional: the worker must see committed rows), running as the
    orchestrator's least-privilege ServiceAccount with the chart's RBAC and admission policies."""
    worker = WorkerProcess(worker_env(as_orchestrator, tmp_path), tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def wait_for_status(store_id: int, wanted: set[str], timeout: float = 300):
    """Poll the database until the store reaches one of `wanted`; fail with its timeline otherwise."""
    from stores_app.models import Store

    deadline = time.monotonic() + timeout
    store = Store.objects.get(pk=store_id)
    while time.monotonic() < deadline:
        store = Store.objects.get(pk=store_id)
        if store.status in wanted:
            return store
        time.sleep(0.5)
    timeline = "\n".join(f"  {e.step} {e.outcome} {e.message}" for e in store.events.all())
    raise AssertionError(f"store {store_id} is {store.status} ({store.status_message}), not {wanted}:\n{timeline}")
