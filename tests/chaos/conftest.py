"""The chaos suite's harness: a real worker it may kill, a private Redis it may restart, the simulated
cluster's API server it may pause, and the invariant every scenario ends with.

Invariant: every store ends `ready`, or `failed` with a reason and then ready at once on retry; no
release is left `pending-*`; after delete no namespace or volume of the store is left; no task is lost
(every store reaches its end within the deadline, with nobody nudging it but the product itself).

Each scenario adds a row to the table printed at the end of the run and written to
results/chaos-latest.md (README "Failure modes" quotes it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from stores_app import services
from stores_app.models import Status, Store
from tests.conftest import REPO, WorkerProcess, worker_env

ROWS: list[dict] = []
FAKE_HELM = REPO / "tests" / "fakes" / "helm"


# --- workers --------------------------------------------------------------------------------------


class Workers:
    """Starts the worker again and again (after each kill) with one environment; stops the last one."""

    def __init__(self, env: dict[str, str], tmp_path: Path):
        self.env, self.tmp_path, self.count, self.current = env, tmp_path, 0, None

    def start(self, timeout: float = 240) -> WorkerProcess:
        """Start a worker and wait for its heartbeat (a loaded machine takes over a minute to boot one)."""
        self.count += 1
        heartbeat = self.tmp_path / f"heartbeat-{self.count}"
        env = {**self.env, "WORKER_HEARTBEAT_FILE": str(heartbeat)}
        self.current = WorkerProcess(env, self.tmp_path / f"worker-{self.count}.log", concurrency=4)
        try:
            self.current.start()
        except RuntimeError:
            deadline = time.monotonic() + timeout
            while not heartbeat.exists():
                if self.current.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        return self.current

    def kill_and_restart(self) -> float:
        """SIGKILL the worker's whole process group (a lost pod); returns when; starts a new one."""
        self.current.kill()
        at = time.time()
        self.start()
        return at

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()


@pytest.fixture
def workers(as_orchestrator, transactional_db, tmp_path, settings):
    """A real worker (4 slots, production timings) on the shared test broker, flushed first, running as
    the orchestrator's least-privilege ServiceAccount like every real worker in the suite."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    pool = Workers(worker_env(as_orchestrator, tmp_path), tmp_path)
    yield pool
    pool.stop()


def scripted_helm_env(kube_cluster, tmp_path: Path, rules: list[dict]) -> dict[str, str]:
    script = tmp_path / "helm-script.json"
    script.write_text(json.dumps(rules))
    return {
        "HELM_BIN": str(FAKE_HELM),
        "FAKE_HELM_SCRIPT": str(script),
        "REAL_HELM": kube_cluster.helm,
        "FAKE_HELM_PYTHON": sys.executable,
    }


# --- a private Redis ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, on its own port and directory, that it may stop and restart."""

    def __init__(self, directory: Path, appendonly: bool = True):
        self.dir, self.port, self.appendonly = directory, free_port(), appendonly
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
                "--daemonize",
                "yes",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--pidfile",
                str(self.dir / "redis.pid"),
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"private redis did not start; see {self.dir / 'redis.log'}")

    def stop(self, keep_data: bool = True) -> None:
        """Shut down; without its data, as a Redis without persistence (or a lost volume) comes back."""
        try:
            redis.Redis.from_url(self.url).shutdown(save=False, nosave=not keep_data)
        except redis.ConnectionError:
            pass  # the server closes the connection as it goes
        if not keep_data:
            for child in self.dir.glob("appendonly*"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop(keep_data=False)


@pytest.fixture
def publish_to(settings):
    """Point this process's Celery producer at another broker (the private Redis) for one test."""
    from orchestrator.celery import app

    def switch(url: str | None) -> None:
        app.conf.broker_write_url = url
        app._after_fork()  # drops the cached connection and producer pools

    yield switch
    switch(None)


# --- stores and the invariant ---------------------------------------------------------------------


@dataclass
class Scenario:
    """One row of the chaos table."""

    name: str
    stores: list[int] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)  # when each fault was injected (epoch seconds)
    retried: int = 0
    notes: str = ""

    def recovery_seconds(self) -> list[float]:
        """Per store: from the last fault before it ended to its end (ready or deleted)."""
        out = []
        for store in Store.objects.filter(pk__in=self.stores):
            end = store.deleted_at or store.ready_at
            if end is None:
                continue
            before = [f for f in self.faults if f <= end.timestamp()]
            if before:
                out.append(end.timestamp() - max(before))
        return out


def create(owner, name: str, engine: str = "woocommerce") -> int:
    return services.create_store(owner, name, engine).pk


def wait_all(store_ids: list[int], wanted: set[str], timeout: float) -> dict[int, Store]:
    deadline = time.monotonic() + timeout
    while True:
        stores = {s.pk: s for s in Store.objects.filter(pk__in=store_ids)}
        if all(s.status in wanted for s in stores.values()):
            return stores
        if time.monotonic() > deadline:
            stuck = {pk: f"{s.status}: {s.status_message}" for pk, s in stores.items() if s.status not in wanted}
            raise AssertionError(f"stores not {wanted} after {timeout:.0f} s (a lost task?): {stuck}")
        time.sleep(0.5)


def pending_releases(kube_cluster, namespaces: set[str]) -> list[str]:
    listed = kube_cluster.run(kube_cluster.helm, "list", "-A", "--pending", "-o", "json").stdout
    return [f"{r['namespace']}/{r['name']}" for r in json.loads(listed or "[]") if r["namespace"] in namespaces]


def settle(scenario: Scenario, owner, kube_cluster, timeout: float = 360) -> None:
    """Every store ready, or failed with a reason and ready at once after a retry; no release pending."""
    stores = wait_all(scenario.stores, {Status.READY, Status.FAILED}, timeout)
    failed = [s for s in stores.values() if s.status == Status.FAILED]
    for store in failed:
        assert store.failure_reason and store.status_message, f"store {store.pk} failed without a reason"
        services.retry_store(store, owner)
    scenario.retried += len(failed)
    if failed:
        wait_all([s.pk for s in failed], {Status.READY}, 240)
    namespaces = {s.namespace for s in stores.values()}
    assert pending_releases(kube_cluster, namespaces) == []


def volumes_of(kube_api_client, namespace: str) -> list[str]:
    from kubernetes import client

    pvs = client.CoreV1Api(kube_api_client).list_persistent_volume().items
    return [pv.metadata.name for pv in pvs if pv.spec.claim_ref and pv.spec.claim_ref.namespace == namespace]


def delete_and_check(scenario: Scenario, owner, kube_api_client, timeout: float = 300, during=None) -> None:
    """Delete every store; each ends deleted with its namespace and the volumes it had really gone.

    The volumes are named while the store still has them, and looked up by name afterwards, so the
    check does not merely repeat teardown's own condition.
    """
    from kubernetes import client

    core = client.CoreV1Api(kube_api_client)
    had = {pk: volumes_of(kube_api_client, Store.objects.get(pk=pk).namespace) for pk in scenario.stores}
    for pk in scenario.stores:
        services.delete_store(Store.objects.get(pk=pk), owner)
    if during is not None:
        during()
    wait_all(scenario.stores, {Status.DELETED}, timeout)
    names = {ns.metadata.name for ns in core.list_namespace().items}
    for pk, volumes in had.items():
        store = Store.objects.get(pk=pk)
        assert store.namespace not in names, f"namespace {store.namespace} left behind"
        for volume in volumes:
            with pytest.raises(client.ApiException) as gone:
                core.read_persistent_volume(volume)
            assert gone.value.status == 404, f"volume {volume} of store {pk} left behind"


def record(scenario: Scenario, kube_cluster) -> None:
    stores = Store.objects.filter(pk__in=scenario.stores)
    recovery = scenario.recovery_seconds()
    ROWS.append(
        {
            "scenario": scenario.name,
            "stores": len(scenario.stores),
            "faults": len(scenario.faults),
            "ready": stores.filter(ready_at__isnull=False).count(),
            "retried": scenario.retried,
            "deleted": stores.filter(status=Status.DELETED).count(),
            "stuck": len(pending_releases(kube_cluster, {s.namespace for s in stores})),
            "p50": statistics.median(recovery) if recovery else None,
            "max": max(recovery) if recovery else None,
            "notes": scenario.notes,
        }
    )


def table() -> str:
    head = (
        "| scenario | stores | faults | ready | failed → retried | deleted, nothing left | stuck releases "
        "| recovery p50 / max |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for r in ROWS:
        rec = f"{r['p50']:.1f} s / {r['max']:.1f} s" if r["p50"] is not None else "–"
        lines.append(
            f"| {r['scenario']} | {r['stores']} | {r['faults']} | {r['ready']} | {r['retried']} "
            f"| {r['deleted']} | {r['stuck']} | {rec} |"
        )
    return head + "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    text = table()
    terminalreporter.write_sep("=", "chaos: stores, faults, outcomes, recovery (fault → store ready or deleted)")
    terminalreporter.write(text)
    out = REPO / "results"
    out.mkdir(exist_ok=True)
    (out / "chaos-latest.md").write_text(text)


# --- the API server -------------------------------------------------------------------------------


def control_plane_pid(component: str) -> int:
    state = os.environ.get("SIMCLUSTER_STATE_DIR") or str(Path.home() / ".local/state/store-orchestrator/simcluster")
    name = os.environ.get("SIMCLUSTER_NAME", "simcluster")
    return int((Path(state) / "kwok" / "clusters" / name / "pids" / f"{component}.pid").read_text())


def pause_api_server(seconds: float) -> float:
    """SIGSTOP the cluster's kube-apiserver for `seconds` (everything talking to it hangs), then SIGCONT."""
    pid = control_plane_pid("kube-apiserver")
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return time.time()


def revive_control_plane(kube_cluster) -> None:
    """Start again any control-plane component that exited (kwokctl starts only the missing ones), so a
    failed pause test does not take the rest of the run down with it."""
    state = os.environ.get("SIMCLUSTER_STATE_DIR") or str(Path.home() / ".local/state/store-orchestrator/simcluster")
    env = {**kube_cluster.env, "KWOK_WORKDIR": str(Path(state) / "kwok")}
    name = os.environ.get("SIMCLUSTER_NAME", "simcluster")
    kwokctl = str(Path(kube_cluster.bin_dir) / "kwokctl")
    subprocess.run([kwokctl, "--name", name, "start", "cluster", "--timeout", "3m"], env=env, check=False, timeout=240)


# --- a private Postgres ---------------------------------------------------------------------------


class PrivatePostgres:
    """A Postgres server of this test's own (Debian's binaries, its own port and data directory)."""

    def __init__(self):
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self.root = Path(tempfile.mkdtemp(prefix="chaos-postgres-"))  # outside $HOME: postgres must reach it
        self.root.chmod(0o755)
        self.data, self.port = self.root / "data", free_port()

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120)

    def init(self, database: str) -> None:
        shutil.chown(self.root, "postgres")  # its log and socket live here too
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        for sql in ("CREATE ROLE orchestrator LOGIN CREATEDB", f'CREATE DATABASE "{database}" OWNER orchestrator'):
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc", sql],
                check=True,
                capture_output=True,
            )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        log = str(self.root / "server.log")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", "start", "-o", options)

    def stop(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_database(workers, settings):
    """The worker and this process both use a private Postgres (migrated), which the test may restart."""
    from django.db import connections

    name = settings.DATABASES["default"]["NAME"]
    server = PrivatePostgres()
    try:
        server.init(name)
        url = f"postgres://orchestrator@127.0.0.1:{server.port}/orchestrator"
        workers.env["DATABASE_URL"] = url  # the worker's settings use the test database's name on it
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            env=workers.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        connection = connections["default"]
        saved = dict(connection.settings_dict)
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(server.port))
        yield server
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    finally:
        server.remove()
