"""While Redis or Postgres is down, the web process answers 503 and says which (JSON with Retry-After for
the API, a plain page for the dashboard, /healthz/ready naming the dependency) instead of a bare 500; and
it recovers by itself when the service comes back.

Production's shape: gunicorn with the production settings, against a Redis and a Postgres of this
test's own (started on free ports with private data directories, stopped and started again here; the
shared development servers are never touched)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO

pytestmark = pytest.mark.slow

PASSWORD = "outage-test-passphrase"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


class PrivateRedis:
    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: _answers(self.port), 20, "the private Redis")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class PrivatePostgres:
    """initdb in a private directory (as the postgres user when run as root, as Postgres insists)."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.data = directory / "data"
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])

    @property
    def url(self) -> str:
        return f"postgres://orchestrator@127.0.0.1:{self.port}/orchestrator"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "orchestrator")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "orchestrator", "orchestrator")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data.parent} -c fsync=off"
        log = str(self.data.parent / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", options, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@dataclass
class Site:
    url: str
    redis: PrivateRedis
    postgres: PrivatePostgres
    token: str
    browser: requests.Session  # signed in to the dashboard

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    directory = Path(tempfile.mkdtemp(prefix="outage-"))
    os.chmod(directory, 0o755)  # the postgres user must reach its data directory below
    redis_server, postgres = PrivateRedis(directory), PrivatePostgres(directory / "pg")
    web: subprocess.Popen | None = None
    try:
        redis_server.start()
        postgres.init()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "orchestrator.settings",
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_server.url,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DEMO_PASSWORD": PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("DJANGO_DEBUG", "CELERY_BROKER_URL", "KUBECONFIG"):
            env.pop(name, None)
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True, timeout=300)
        subprocess.run([*manage, "ensure_demo_user"], cwd=REPO, env=env, check=True, capture_output=True)
        port = free_port()
        log = open(directory / "web.log", "wb")  # noqa: SIM115 (closed with the process)
        web = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "orchestrator.wsgi:application"]
            + ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "--timeout", "60"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(url), 90, f"gunicorn (log: {directory / 'web.log'})")
        token = requests.post(f"{url}/api/auth/token/", auth=("demo", PASSWORD), timeout=30).json()["token"]
        yield Site(url, redis_server, postgres, token, _signed_in(url))
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=30)
        redis_server.stop()
        with contextlib.suppress(Exception):
            postgres.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _ready(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{url}/healthz/ready", timeout=5).status_code == 200
    return False


def _signed_in(url: str) -> requests.Session:
    browser = requests.Session()
    browser.get(f"{url}/accounts/login/", timeout=30)
    form = {"username": "demo", "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    response = browser.post(f"{url}/accounts/login/", data=form, timeout=30, headers={"Referer": url})
    assert response.status_code == 200 and "Log out demo" in response.text
    return browser


def assert_outage(site: Site, service: str, words: str) -> None:
    api = site.api("GET", "/api/stores/")
    assert api.status_code == 503, api.text
    assert api.headers["Content-Type"] == "application/json"
    assert api.json()["unavailable"] == service and words in api.json()["detail"]
    assert 0 < int(api.headers["Retry-After"]) <= 300
    created = site.api("POST", "/api/stores/", json={"name": "Outage Shop", "engine": "medusa"})
    assert created.status_code == 503 and created.json()["unavailable"] == service

    page = site.browser.get(site.url + "/", timeout=30)
    assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html")
    assert "temporarily unavailable" in page.text and words in page.text and "Retry-After" in page.headers
    assert "Traceback" not in page.text and "Server Error" not in page.text

    ready = requests.get(site.url + "/healthz/ready", timeout=30)
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks[service].startswith("error"), checks
    assert [name for name, state in checks.items() if state == "ok"] == [n for n in checks if n != service]
    assert requests.get(site.url + "/healthz/live", timeout=30).status_code == 200


def assert_recovered(site: Site) -> None:
    wait_for(lambda: site.api("GET", "/api/stores/").status_code == 200, 30, "the API to answer again")
    assert site.browser.get(site.url + "/", timeout=30).status_code == 200
    assert requests.get(site.url + "/healthz/ready", timeout=30).status_code == 200


def test_redis_down_answers_503_then_recovers(site):
    assert site.api("GET", "/api/stores/").status_code == 200
    site.redis.stop()
    try:
        assert_outage(site, "redis", "Redis")
    finally:
        site.redis.start()
    assert_recovered(site)


def test_postgres_down_answers_503_then_recovers(site):
    assert site.api("GET", "/api/stores/").status_code == 200
    site.postgres.stop()
    try:
        assert_outage(site, "database", "Postgres")
        login = requests.post(site.url + "/api/auth/token/", auth=("demo", PASSWORD), timeout=30)
        assert login.status_code == 503 and login.json()["unavailable"] == "database"
    finally:
        site.postgres.start()
    assert_recovered(site)
