"""A Medusa store, end to end and for real: created through the API, provisioned by a real Celery
worker with the real chart, every pod on the real node with the images built here. The setup Job
really migrates, creates the admin and seeds; the server's probes really pass; `helm test` really
places an order through the Service; the store is ready. Then the same store is upgraded through the
API to a new chart version: the new revision's setup Job migrates again and writes its marker, and the
new server's container starts only after that marker exists (its init container waited for it). Deleting
it leaves nothing: namespace, volumes and their directories are gone. Prints what the store's pods use
(kubelet's stats)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from stores_app.models import Status, Store, StoreUpgrade
from tests.conftest import WorkerProcess, wait_for_status, worker_env
from tests.simcluster.helpers import namespace_gone, wait_for
from tests.upgrades.versions import NEW_VERSION, copy_charts, release_new_version

from .conftest import REAL_NODE, scheduling_values

# Longer than pytest.ini's 900 s: image imports, migrations and helm waits on two shared cores.
pytestmark = [pytest.mark.realnode, pytest.mark.slow, pytest.mark.timeout(2400)]

# Migrations, seeding and the first start take minutes on two shared cores.
STORE_TIMEOUT = 1500


@pytest.fixture
def medusa_values(node_images, tmp_path) -> Path:
    """STORE_MEDUSA_VALUES for the real node: the images built here, every pod on the node."""
    images = node_images("medusa", "postgres", "redis")
    values = {
        **scheduling_values(),
        "medusa": {"image": images["medusa"].values()},
        "postgres": {"image": images["postgres"].values()},
        "redis": {"image": images["redis"].values()},
    }
    path = tmp_path / "medusa-real-node.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture
def medusa_charts(tmp_path, settings) -> Path:
    """STORE_CHARTS_DIR: a copy of the store charts, which the test moves to a new version."""
    settings.STORE_CHARTS_DIR = copy_charts(tmp_path)
    return settings.STORE_CHARTS_DIR


@pytest.fixture
def medusa_worker(as_orchestrator, transactional_db, tmp_path, medusa_values, medusa_charts):
    """The real Celery worker (as the `celery_worker` fixture: the orchestrator's least-privilege
    ServiceAccount), with the real node's values and the charts copy."""
    env = worker_env(
        as_orchestrator,
        tmp_path,
        STORE_CHARTS_DIR=str(medusa_charts),
        STORE_MEDUSA_VALUES=str(medusa_values),
        HELM_TIMEOUT_SECONDS="900",
        HELM_TEST_TIMEOUT_SECONDS="600",
        READY_TIMEOUT_SECONDS=str(STORE_TIMEOUT),
    )
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def _state(state: client.V1ContainerState) -> str:
    if state.waiting:
        return f"waiting ({state.waiting.reason})"
    if state.terminated:
        return f"terminated ({state.terminated.reason}, exit {state.terminated.exit_code})"
    return "running"


def describe_namespace(core_api: client.CoreV1Api, namespace: str) -> str:
    """Pods, their node and state, and the setup Job's log: what a failed store tells an operator."""
    lines = []
    for pod in core_api.list_namespaced_pod(namespace).items:
        states = [
            f"{s.name}: ready={s.ready} restarts={s.restart_count} {_state(s.state)}"
            for s in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
        ]
        lines.append(f"pod {pod.metadata.name} on {pod.spec.node_name}: {pod.status.phase}; " + "; ".join(states))
        if pod.metadata.labels.get("app.kubernetes.io/component") == "setup":
            log = core_api.read_namespaced_pod_log(pod.metadata.name, namespace, tail_lines=40)
            lines.append(f"--- log of {pod.metadata.name}:\n{log}")
    return "\n".join(lines)


def store_usage(core_api: client.CoreV1Api, namespace: str) -> dict[str, tuple[float, float]]:
    """{pod: (memory MiB, CPU millicores)} now, from the real kubelet's stats summary."""
    summary = core_api.connect_get_node_proxy_with_path(REAL_NODE, "stats/summary", _preload_content=False)
    usage = {}
    for pod in yaml.safe_load(summary.data)["pods"]:
        if pod["podRef"]["namespace"] == namespace:
            memory = (pod.get("memory") or {}).get("workingSetBytes", 0) / 2**20
            cpu = (pod.get("cpu") or {}).get("usageNanoCores", 0) / 1e6
            usage[pod["podRef"]["name"]] = (memory, cpu)
    return usage


def cgroup_totals(pod: client.V1Pod) -> tuple[float, float]:
    """(peak memory MiB, CPU seconds) of a running pod since it started, from its cgroup (v1 files)."""
    base = Path("/sys/fs/cgroup")
    for memory_dir in base.glob(f"memory/kubepods*/**/pod{pod.metadata.uid}"):
        relative = memory_dir.relative_to(base / "memory")
        peak = int((memory_dir / "memory.max_usage_in_bytes").read_text()) / 2**20
        cpu = int((base / "cpuacct" / relative / "cpuacct.usage").read_text()) / 1e9
        return peak, cpu
    return 0.0, 0.0


def print_usage(core_api: client.CoreV1Api, namespace: str) -> None:
    """What the store costs on this machine, for the README (printed with -s)."""
    pods = {p.metadata.name: p for p in core_api.list_namespaced_pod(namespace).items if p.status.phase == "Running"}
    time.sleep(30)  # past the first requests: idle figures
    now = store_usage(core_api, namespace)
    print(f"\n{'pod of a ready Medusa store':48s} {'idle MiB':>9s} {'idle mCPU':>9s} {'peak MiB':>9s} {'CPU s':>7s}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for name, pod in sorted(pods.items()):
        memory, cpu = now.get(name, (0.0, 0.0))
        peak, seconds = cgroup_totals(pod)
        row = [memory, cpu, peak, seconds]
        totals = [t + v for t, v in zip(totals, row, strict=True)]
        print(f"{name:48s} {row[0]:9.1f} {row[1]:9.1f} {row[2]:9.1f} {row[3]:7.1f}")
    print(f"{'total':48s} {totals[0]:9.1f} {totals[1]:9.1f} {totals[2]:9.1f} {totals[3]:7.1f}")


def store_sql(kube_cluster, namespace: str, sql: str) -> str:
    """A query's rows (unaligned, `|` between columns) in the store's own Postgres, through its pod."""
    pod = kube_cluster.run(
        kube_cluster.kubectl,
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        "app.kubernetes.io/component=postgres",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ).stdout
    return kube_cluster.run(
        kube_cluster.kubectl, "exec", "-n", namespace, pod, "--", "psql", "-U", "medusa", "-d", "medusa", "-tAc", sql
    ).stdout.strip()


def orders_in_database(kube_cluster, namespace: str) -> int:
    """Orders in the store's own Postgres (helm test's pod is deleted once it passed)."""
    return int(store_sql(kube_cluster, namespace, 'SELECT count(*) FROM "order"'))


def _server_pod(core_api: client.CoreV1Api, namespace: str) -> client.V1Pod:
    (pod,) = [
        p
        for p in core_api.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/component=server").items
        if not p.metadata.deletion_timestamp
    ]
    return pod


def upgrade_for_real(owner_api, core_api, kube_cluster, charts: Path, store: Store) -> None:
    """Upgrade the ready store to a new chart version through the API; the new server must have started
    only after the new revision's setup (its migrations) wrote its marker."""
    before = _server_pod(core_api, store.namespace)
    release_new_version(charts, "medusa")
    response = owner_api.post(f"/api/stores/{store.pk}/upgrade/")
    assert response.status_code == 202, response.content
    upgraded = wait_for_status(store.pk, {Status.READY, Status.FAILED}, timeout=STORE_TIMEOUT)
    record = upgraded.upgrades.get()
    assert upgraded.status == Status.READY and record.state == StoreUpgrade.State.SUCCEEDED, (
        f"{upgraded.status_message}\n{describe_namespace(core_api, store.namespace)}"
    )
    assert (upgraded.chart_version, upgraded.helm_revision) == (NEW_VERSION, 2)

    rows = store_sql(kube_cluster, store.namespace, "SELECT marker, finished_at FROM store_orchestrator.setup_runs")
    markers = dict(line.split("|") for line in rows.splitlines())
    marker = f"{NEW_VERSION}/2"
    assert set(markers) >= {f"{store.chart_version}/1", marker}, markers
    migrated = dt.datetime.fromisoformat(markers[marker].replace(" ", "T")).astimezone(dt.UTC)

    server = _server_pod(core_api, store.namespace)
    assert server.metadata.uid != before.metadata.uid, "the upgrade started a new server pod"
    (waited,) = server.status.init_container_statuses
    (running,) = server.status.container_statuses
    started = running.state.running.started_at
    # Kubernetes keeps whole seconds: the server started in the second its marker was written, or later.
    assert started >= migrated.replace(microsecond=0), (started, migrated)
    assert waited.state.terminated.finished_at <= started
    log = core_api.read_namespaced_pod_log(server.metadata.name, store.namespace, container="wait-for-setup")
    assert f"store is set up ({marker})" in log, log
    pods = core_api.list_namespaced_pod(store.namespace, label_selector="app.kubernetes.io/component=setup").items
    setup = [p for p in pods if p.metadata.labels.get("job-name", "").endswith("-setup-2")]
    assert setup, [p.metadata.name for p in pods]
    setup_log = core_api.read_namespaced_pod_log(setup[-1].metadata.name, store.namespace)
    assert "setup-store: migrations" in setup_log and f"marked {marker} set up" in setup_log, setup_log[-3000:]
    print(f"\nupgrade to {NEW_VERSION}: migrations done {migrated:%H:%M:%S.%f}, new server started {started:%H:%M:%S}")


def test_medusa_store_runs_for_real_is_upgraded_and_leaves_nothing(
    medusa_worker, medusa_charts, owner_api, core_api, kube_cluster
):
    response = owner_api.post("/api/stores/", {"name": "Real Medusa", "engine": "medusa"}, format="json")
    assert response.status_code == 202, response.content
    store_id = response.json()["id"]
    store = wait_for_status(store_id, {Status.READY, Status.FAILED}, timeout=STORE_TIMEOUT)
    namespace = store.namespace
    assert store.status == Status.READY, (
        f"store {store.status}: {store.status_message}\n{describe_namespace(core_api, namespace)}"
    )

    pods = core_api.list_namespaced_pod(namespace).items
    assert pods and all(p.spec.node_name == REAL_NODE for p in pods), [
        (p.metadata.name, p.spec.node_name) for p in pods
    ]
    setup = [p for p in pods if p.metadata.labels.get("app.kubernetes.io/component") == "setup"]
    assert setup and all(p.status.phase == "Succeeded" for p in setup)
    setup_log = core_api.read_namespaced_pod_log(setup[-1].metadata.name, namespace)
    for step in ("setup-store: migrations", "setup-store: admin user", "setup-store: seed", "setup-store: done"):
        assert step in setup_log, setup_log[-3000:]
    server = [p for p in pods if p.metadata.labels.get("app.kubernetes.io/component") == "server"]
    assert server and all(any(c.type == "Ready" and c.status == "True" for c in p.status.conditions) for p in server)
    # helm test placed an order through the Service; the store's own database has it.
    assert orders_in_database(kube_cluster, namespace) >= 1
    assert "smoke_test" in [e.step for e in store.events.all()]

    print_usage(core_api, namespace)
    upgrade_for_real(owner_api, core_api, kube_cluster, medusa_charts, store)

    volumes = [
        pv
        for pv in core_api.list_persistent_volume().items
        if pv.spec.claim_ref and pv.spec.claim_ref.namespace == namespace
    ]
    directories = [Path(pv.spec.host_path.path) for pv in volumes if pv.spec.host_path]
    assert directories and all(d.exists() for d in directories)

    assert owner_api.delete(f"/api/stores/{store_id}/").status_code == 202
    store = wait_for_status(store_id, {Status.DELETED, Status.FAILED}, timeout=600)
    assert store.status == Status.DELETED, store.status_message
    assert namespace_gone(core_api, namespace)
    names = {pv.metadata.name for pv in core_api.list_persistent_volume().items}
    assert not names & {pv.metadata.name for pv in volumes}
    wait_for(lambda: not any(d.exists() for d in directories), 60, "the volumes' directories removed")
    assert Store.objects.get(pk=store_id).status == Status.DELETED
