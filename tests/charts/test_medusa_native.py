"""The Medusa server project under deploy/images/medusa, built and run the way its image runs it but
without containers, must take a real order through its Store API.

The steps mirror the Dockerfile and the chart: ``npm ci`` and ``medusa build`` in a copy of the build
context, ``npm ci --omit=dev`` in the built server (the image's /app), the chart's setup script
(migrations, admin user, seed) against a fresh database on the local Postgres, ``medusa start`` on a
loopback port, then ``charts/medusa/files/place-order.mjs`` — the very script of the chart's
``helm test`` hook. The server's init container (``setup-store.sh --wait``) is checked to hold
until the setup of its own revision is done (an upgrade's waits for the upgrade's setup, not the
first). When run as root, the setup script and the server run as an unprivileged user that cannot
write to the application directory, as under the chart's read-only root filesystem.
The first setup run is measured (CPU time and peak memory, with GNU time) and checked against the
chart's setup Job resources and deadline, which were sized from it.

Slow (a few minutes, most of it npm); it needs the services of ``tools/dev/services.sh start``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import yaml
from kubernetes.utils import parse_quantity

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = REPO_ROOT / "deploy" / "images" / "medusa"
ORDER_SCRIPT = REPO_ROOT / "charts" / "medusa" / "files" / "place-order.mjs"
CHART_VALUES = REPO_ROOT / "charts" / "medusa" / "values.yaml"
# What the Dockerfile's build stage copies (its .dockerignore keeps node_modules and .medusa out).
BUILD_CONTEXT = ["package.json", "package-lock.json", "tsconfig.json", "medusa-config.ts", "src"]
# The server's user in the chart is non-root; nobody stands in for it here.
UNPRIVILEGED = 65534

POSTGRES_URL = os.environ.get("MEDUSA_TEST_POSTGRES_URL", "postgresql://orchestrator@127.0.0.1:54320/orchestrator")
# A Redis database of its own: Medusa's queues must not meet another process's.
REDIS_URL = os.environ.get("MEDUSA_TEST_REDIS_URL", "redis://127.0.0.1:63790/13")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

TIMINGS: dict[str, float] = {}


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _timed(step: str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs a command, records how long it took, and fails with its output's tail if it fails."""
    started = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    TIMINGS[step] = round(time.monotonic() - started, 1)
    assert result.returncode == 0, (
        f"{step}: {' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{_tail(result.stdout)}\nstderr:\n{_tail(result.stderr)}"
    )
    return result


def _as_store_user() -> list[str]:
    """Command prefix that drops root, as the chart's securityContext does; empty when not root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def workdir():
    # World-traversable (pytest's own tmp dirs are not) so the unprivileged user can read the app.
    path = Path(tempfile.mkdtemp(prefix="medusa-native-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server_dir(workdir: Path) -> Path:
    """The built server with its production dependencies: what the image holds in /app."""
    build = workdir / "build"
    build.mkdir()
    for name in BUILD_CONTEXT:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, build / name)
        else:
            shutil.copy2(source, build / name)
    npm_env = {**os.environ, "MEDUSA_DISABLE_TELEMETRY": "true"}
    _timed("npm ci", ["npm", "ci", "--no-audit", "--no-fund"], cwd=build, env=npm_env)
    _timed("medusa build", ["node_modules/.bin/medusa", "build"], cwd=build, env=npm_env)
    app = workdir / "app"
    shutil.copytree(build / ".medusa" / "server", app)
    _timed(
        "npm ci --omit=dev",
        ["npm", "ci", "--omit=dev", "--no-audit", "--no-fund"],
        cwd=app,
        env=npm_env,
    )
    shutil.copy2(PROJECT / "setup-store.sh", app / "setup-store.sh")
    return app


@pytest.fixture
def database_url():
    """A fresh database on the local Postgres, dropped afterwards."""
    name = f"medusa_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(POSTGRES_URL)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def store_env(workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """The environment the chart gives the setup Job and the server, with fresh secrets."""
    writable = workdir / "writable"  # the chart's emptyDir (HOME, TMPDIR)
    uploads = workdir / "uploads"  # the chart's media volume
    for path in (writable, uploads):
        path.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, UNPRIVILEGED, UNPRIVILEGED)
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(writable),
        "TMPDIR": str(writable),
        "NODE_ENV": "production",
        "MEDUSA_DISABLE_TELEMETRY": "true",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": secrets.token_urlsafe(32),
        "COOKIE_SECRET": secrets.token_urlsafe(32),
        "ADMIN_EMAIL": "admin@native-test.stores.local.dev",
        "ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "MEDUSA_UPLOAD_DIR": str(uploads),
    }


def _wait_for_health(url: str, server: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"medusa start exited {server.returncode}:\n{_tail(log.read_text())}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    pytest.fail(f"{url}/health did not answer in {timeout}s:\n{_tail(log.read_text())}")


def _check_setup_sizing(usage: Path) -> None:
    """The chart's setup Job is sized from this very run (GNU time's output in ``usage``): its
    memory limit holds the measured peak with room to spare, and its deadline covers the measured
    CPU time at the Job's CPU request (a node too busy to give more) plus the wait for Postgres,
    twice. Prints the figures."""
    elapsed, user, system, peak_kib = usage.read_text().split()[-4:]
    cpu_seconds, peak = float(user) + float(system), int(peak_kib) * 1024
    setup = yaml.safe_load(CHART_VALUES.read_text())["setup"]
    request_cpu = parse_quantity(setup["resources"]["requests"]["cpu"])
    worst_case = float(Decimal(str(cpu_seconds)) / request_cpu) + setup["databaseWaitSeconds"]
    print(
        f"\nmedusa first setup: {cpu_seconds:.1f} CPU-s, peak {peak / 2**20:.0f} MiB, {float(elapsed):.1f} s here; "
        f"at the {setup['resources']['requests']['cpu']} request plus the Postgres wait: {worst_case:.0f} s "
        f"(deadline {setup['activeDeadlineSeconds']} s)"
    )
    assert peak <= parse_quantity(setup["resources"]["limits"]["memory"]) * Decimal("0.8"), peak
    assert 2 * worst_case <= setup["activeDeadlineSeconds"], worst_case


def test_medusa_store_takes_an_order(server_dir: Path, store_env: dict[str, str]) -> None:
    setup = [*_as_store_user(), "sh", str(server_dir / "setup-store.sh")]
    first = {**store_env, "SETUP_MARKER": "0.3.0/1"}  # what the chart sets: chart version / revision
    # What the server's init container runs: it must hold the server back until setup is done.
    waiter = subprocess.Popen([*setup, "--wait"], cwd=server_dir, env=first, stdout=subprocess.PIPE, text=True)
    usage = server_dir.parent / "setup-usage.txt"
    measured = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(usage), *setup]
    _timed("setup (migrations, admin, seed)", measured, cwd=server_dir, env=first)
    assert waiter.wait(timeout=60) == 0, "setup-store.sh --wait did not see the finished setup"
    assert "store is set up (0.3.0/1)" in waiter.stdout.read()
    _check_setup_sizing(usage)
    # An upgrade's server waits for its own revision's setup, not for an earlier one that is long done.
    upgrade = {**store_env, "SETUP_MARKER": "0.4.0/2", "SETUP_WAIT_SECONDS": "4"}
    early = subprocess.run([*setup, "--wait"], cwd=server_dir, env=upgrade, capture_output=True, text=True)
    assert early.returncode != 0 and "gave up waiting for the setup of 0.4.0/2" in early.stderr, early
    # The setup Job runs again on every upgrade and after a partial failure: it must converge.
    _timed("setup again (idempotent)", setup, cwd=server_dir, env=upgrade)
    _timed("the upgrade's server waits no more", [*setup, "--wait"], cwd=server_dir, env=upgrade)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = server_dir.parent / "medusa-server.log"
    started = time.monotonic()
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [*_as_store_user(), "node_modules/.bin/medusa", "start"],
            cwd=server_dir,
            env={**store_env, "HOST": "127.0.0.1", "PORT": str(port)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so every child is stopped with it
        )
    try:
        _wait_for_health(url, server, log, timeout=180)
        TIMINGS["server start to /health"] = round(time.monotonic() - started, 1)
        order_env = {
            "PATH": store_env["PATH"],
            "MEDUSA_URL": url,
            "ADMIN_EMAIL": store_env["ADMIN_EMAIL"],
            "ADMIN_PASSWORD": store_env["ADMIN_PASSWORD"],
        }
        result = _timed("order", ["node", str(ORDER_SCRIPT)], env=order_env, timeout=300)
        order = json.loads(result.stdout.strip().splitlines()[-1])
        assert order["order_id"].startswith("order_"), order
        assert order["total"] > 0, order
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        print(f"\nmedusa native timings (s): {json.dumps(TIMINGS)}")
