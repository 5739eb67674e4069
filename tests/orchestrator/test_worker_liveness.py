"""The worker's liveness probe catches a worker that is alive but stuck: a helm hung in a task slot while
the heartbeat keeps ticking. A real worker, under the orchestrator's ServiceAccount, provisions a store
whose `helm upgrade` hangs (the scripted helm sleeps where a real one would hang on a dead connection);
the probe passes while the command is younger than its limit and fails, naming it, once it is older."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from stores_app.models import Store
from tests.conftest import REPO, WorkerProcess, worker_env
from tests.deploy.test_least_privilege import delete_as_admin

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

FAKE_HELM = Path(__file__).resolve().parents[1] / "fakes" / "helm"
# The production limit is helm's timeout plus a minute (WORKER_STUCK_COMMAND_SECONDS, 360 s); waiting
# that long would prove nothing more, so the probe is given a short one here.
LIMIT_SECONDS = 8


def probe(env: dict[str, str], worker: WorkerProcess, limit: float) -> subprocess.CompletedProcess:
    """The chart's liveness probe command, pointed at this worker instead of the container's PID 1."""
    args = ["--worker-pid", str(worker.proc.pid), "--max-command-seconds", str(limit)]
    return subprocess.run(
        [sys.executable, "manage.py", "worker_health", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def passes(worker: WorkerProcess, limit: float, settings) -> bool:
    """The same command in this process (quicker; the failing case runs the real subprocess)."""
    settings.WORKER_HEARTBEAT_FILE = worker.env["WORKER_HEARTBEAT_FILE"]
    try:
        call_command("worker_health", "--worker-pid", str(worker.proc.pid), "--max-command-seconds", str(limit))
    except SystemExit:
        return False
    return True


def test_probe_fails_on_a_hung_helm(
    as_orchestrator, kube_cluster, kube_api_client, transactional_db, tmp_path, owner_api, settings
):
    script = tmp_path / "helm-script.json"
    script.write_text(json.dumps([{"command": "upgrade", "sleep": 3600}]))
    env = worker_env(
        as_orchestrator,
        tmp_path,
        HELM_BIN=str(FAKE_HELM),
        FAKE_HELM_SCRIPT=str(script),
        REAL_HELM=kube_cluster.helm,
        FAKE_HELM_PYTHON=sys.executable,
    )
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    store_id = None
    try:
        assert passes(worker, LIMIT_SECONDS, settings)

        response = owner_api.post("/api/stores/", {"name": "Hung Helm", "engine": "woocommerce"}, format="json")
        store_id = response.json()["id"]
        calls = Path(f"{script}.calls")
        deadline = time.monotonic() + 120
        while not (calls.exists() and '"upgrade"' in calls.read_text()):
            assert time.monotonic() < deadline, f"helm upgrade never started; see {tmp_path / 'worker.log'}"
            time.sleep(0.5)
        started = time.monotonic()

        # Younger than the production limit: the worker is fine, even though a slot is busy.
        assert passes(worker, 600, settings)
        time.sleep(max(0.0, LIMIT_SECONDS + 1 - (time.monotonic() - started)))
        stuck = probe(env, worker, LIMIT_SECONDS)
        assert stuck.returncode == 1, stuck.stdout
        assert "A task's command is hung" in stuck.stderr and "upgrade" in stuck.stderr
        assert "Heartbeat" not in stuck.stderr  # the main process is alive: only the hung helm gives it away
    finally:
        worker.kill()  # the whole process group, the sleeping helm included
        if store_id is not None:
            delete_as_admin(kube_api_client, Store.objects.get(pk=store_id).namespace)
