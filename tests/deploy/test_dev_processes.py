"""`make up`'s processes run under supervisord (tools/dev/processes.sh): a worker that dies is started
again, `make down` stops everything, and the env file it writes can be sourced without breaking PATH.
Run here against the test database and broker, a private run directory and a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PROCESSES = REPO / "tools" / "dev" / "processes.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)
    return result


@pytest.fixture
def dev_env(as_orchestrator, transactional_db, tmp_path):
    # A helm directory with a space in its name: the env file must quote it.
    bin_dir = tmp_path / "helm bin"
    bin_dir.mkdir()
    (bin_dir / "helm").symlink_to(as_orchestrator.env["HELM_BIN"])
    env = {
        **as_orchestrator.env,
        "HELM_BIN": str(bin_dir / "helm"),
        "RUN_DIR": str(tmp_path / "run"),
        "PORT": str(free_port()),
        "WORKER_CONCURRENCY": "1",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ORCHESTRATOR_TEST_WORKER": "1",  # the test database, like the tests' own workers
        "WORKER_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
    }
    yield env
    subprocess.run([str(PROCESSES), "stop"], env=env, capture_output=True, timeout=120)


def supervised_pid(env: dict[str, str], name: str) -> int:
    out = subprocess.run(
        ["supervisorctl", "-c", str(REPO / "tools" / "dev" / "supervisord.conf"), "pid", name],
        env={**env, "REPO": str(REPO)},
        capture_output=True,
        text=True,
    ).stdout.strip()
    return int(out) if out.isdigit() and out != "0" else 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_dead_worker_is_restarted_and_down_stops_everything(dev_env):
    assert subprocess.run(["which", "supervisord"], capture_output=True).returncode == 0, "tools/dev/bootstrap.sh"
    start = subprocess.run([str(PROCESSES), "start"], env=dev_env, capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr
    url = f"http://127.0.0.1:{dev_env['PORT']}"
    heartbeat = Path(dev_env["WORKER_HEARTBEAT_FILE"])
    wait_until(lambda: _ready(url), 90, f"web (logs in {dev_env['RUN_DIR']})")
    wait_until(heartbeat.exists, 90, "the worker's heartbeat")

    # The env file restores the same settings and keeps PATH working (it used to replace it).
    env_file = Path(dev_env["RUN_DIR"]) / "env"
    sourced = subprocess.run(
        ["bash", "-c", f"source {env_file} && command -v ls && command -v helm && echo $KUBECONFIG"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert sourced.returncode == 0, sourced.stderr
    assert sourced.stdout.splitlines() == ["/usr/bin/ls", dev_env["HELM_BIN"], dev_env["KUBECONFIG"]]

    pids = {name: supervised_pid(dev_env, name) for name in ("web", "worker", "beat")}
    assert all(pids.values()), pids
    killed_at = time.time()
    os.kill(pids["worker"], signal.SIGKILL)  # a crash, not a stop
    new_worker = wait_until(
        lambda: (p := supervised_pid(dev_env, "worker")) not in (0, pids["worker"]) and p, 60, "restart"
    )
    wait_until(lambda: heartbeat.stat().st_mtime > killed_at, 90, "the restarted worker's heartbeat")
    assert alive(new_worker) and alive(pids["web"]) and alive(pids["beat"])

    stop = subprocess.run([str(PROCESSES), "stop"], env=dev_env, capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr
    assert not [name for name, pid in {**pids, "worker": new_worker}.items() if alive(pid)]
    assert not _ready(url)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False
