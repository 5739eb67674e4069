"""The baseline: what a script calling helm directly would do for the same stores.

Per store, in `parallelism` threads: create the namespace (same Pod Security labels as the
orchestrator) and the credentials Secret (same keys, same generator) with the Kubernetes client, then
the very `helm upgrade --install` command line the orchestrator's gateway runs for an equivalent store
(values from `stores_app.provisioning.chart_values` on stdin; recorded from the gateway, see
`orchestrator_commands`) plus `--wait --wait-for-jobs`, then the gateway's `helm test` command line.
Teardown: the gateway's `helm uninstall` command line, delete the namespace, wait until it and any
PersistentVolume bound to it are gone.

Baseline namespaces carry `app.kubernetes.io/managed-by=store-orchestrator-bench` (not the
orchestrator's value), so no orchestrator sharing the cluster records them as orphans.
"""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .stats import summary

BENCH_MANAGED_BY = "store-orchestrator-bench"
LABEL_BENCH_RUN = "store-orchestrator.io/bench-run"
FAKE_ID_BASE = 900_000_000  # baseline "store ids": far above any real id


@dataclass
class BaselineStore:
    index: int
    engine: str
    store_id: int
    slug: str
    namespace: str
    release: str
    values: dict
    secret_name: str
    install_args: list[str] = field(default_factory=list)  # the orchestrator's helm upgrade, plus --wait
    install_stdin: bytes = b""
    test_args: list[str] = field(default_factory=list)  # the orchestrator's helm test
    uninstall_args: list[str] = field(default_factory=list)  # the orchestrator's helm uninstall
    requested: float = 0.0
    ready: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    error: str = ""
    delete_requested: float = 0.0
    deleted: float | None = None
    delete_error: str = ""


class _Captured(Exception):
    pass


def orchestrator_commands(namespace: str, release: str, engine: str, values: dict) -> dict:
    """The helm command lines (and stdin) the orchestrator's HelmGateway runs to install and test a store.

    They are recorded from the gateway itself (its pyhelm3 client's `run` is intercepted, nothing is
    executed except `helm show chart`), so the baseline follows any change to the gateway's flags.
    """
    from stores_app.helm import HelmError, HelmGateway

    gateway = HelmGateway()
    command = gateway.client._command
    original = command.run
    recorded: list[tuple[list[str], bytes | None]] = []

    async def record(args, input=None):  # noqa: A002 (pyhelm3's parameter name)
        if list(args[:2]) == ["show", "chart"]:
            return await original(args, input)
        recorded.append(([str(a) for a in args], input))
        raise _Captured()

    command.run = record
    try:
        for call in (
            lambda: gateway.install_or_upgrade(namespace, release, engine, values),
            lambda: gateway.test(namespace, release),
            lambda: gateway.uninstall(namespace, release),
        ):
            try:
                call()
            except HelmError:
                pass
    finally:
        command.run = original
    (install, stdin), (test, _), (uninstall, _) = recorded
    if "--wait" not in install:
        install = [*install, "--wait", "--wait-for-jobs"]
    return {"install_args": install, "install_stdin": stdin or b"", "test_args": test, "uninstall_args": uninstall}


def make_stores(run_id: str, n: int, engines: list[str]) -> list[BaselineStore]:
    """Stores equivalent to the orchestrator's, with the values and commands the orchestrator would use."""
    from stores_app.models import Store
    from stores_app.naming import namespace_for, release_for
    from stores_app.provisioning import chart_values

    out = []
    for i in range(n):
        engine = engines[i % len(engines)]
        store_id = FAKE_ID_BASE + i
        slug = f"b{run_id}-{i}"
        release = release_for(store_id, slug)
        store = Store(id=store_id, slug=slug, engine=engine, release_name=release)
        store.namespace = namespace_for(store_id, slug)
        values = chart_values(store)
        out.append(
            BaselineStore(
                index=i,
                engine=engine,
                store_id=store_id,
                slug=slug,
                namespace=store.namespace,
                release=release,
                values=values,
                secret_name=store.secret_name,
                **orchestrator_commands(store.namespace, release, engine, values),
            )
        )
    return out


class Runner:
    """Runs the raw helm/kubernetes commands; one Kubernetes API client per thread."""

    def __init__(self, run_id: str, helm: str, kubeconfig: str, helm_timeout: int, test_timeout: int):
        self.run_id = run_id
        self.helm = helm
        self.kubeconfig = kubeconfig
        self.helm_timeout = helm_timeout
        self.test_timeout = test_timeout
        self._local = threading.local()

    def core(self):
        api = getattr(self._local, "core", None)
        if api is None:
            from kubernetes import client, config

            api = client.CoreV1Api(config.new_client_from_config(config_file=self.kubeconfig))
            self._local.core = api
        return api

    def _helm(self, args: list[str], stdin: bytes | None = None, timeout: float = 600) -> None:
        result = subprocess.run(
            [self.helm, *args, "--kubeconfig", self.kubeconfig],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"]
            raise RuntimeError(f"helm {args[0]} exited {result.returncode}: {lines[-1][:300]}")

    # --- provisioning ---------------------------------------------------------------
    def provision(self, store: BaselineStore) -> None:
        from kubernetes import client

        from stores_app.kube import LABEL_ENGINE, LABEL_MANAGED_BY, LABEL_OWNER_ID, LABEL_STORE_ID, SECRET_KEYS

        store.requested = time.time()
        try:
            labels = {
                LABEL_MANAGED_BY: BENCH_MANAGED_BY,
                LABEL_STORE_ID: str(store.store_id),
                LABEL_OWNER_ID: "0",
                LABEL_ENGINE: store.engine,
                LABEL_BENCH_RUN: self.run_id,
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
            }
            body = client.V1Namespace(metadata=client.V1ObjectMeta(name=store.namespace, labels=labels))
            self.core().create_namespace(body, _request_timeout=20)
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(
                    name=store.secret_name,
                    labels={
                        LABEL_MANAGED_BY: BENCH_MANAGED_BY,
                        LABEL_STORE_ID: str(store.store_id),
                        LABEL_ENGINE: store.engine,
                    },
                ),
                type="Opaque",
                string_data={k: secrets.token_urlsafe(32) for k in SECRET_KEYS[store.engine]},
            )
            self.core().create_namespaced_secret(store.namespace, secret, _request_timeout=20)
            store.phases["namespace + Secret"] = time.time() - store.requested
            t = time.time()
            self._helm(store.install_args, stdin=store.install_stdin, timeout=self.helm_timeout + 60)
            store.phases["helm upgrade --install --wait --wait-for-jobs"] = time.time() - t
            t = time.time()
            self._helm(store.test_args, timeout=self.test_timeout + 60)
            store.phases["helm test"] = time.time() - t
            store.ready = time.time()
        except Exception as exc:  # noqa: BLE001 (recorded per store and reported)
            store.error = f"{type(exc).__name__}: {str(exc)[:300]}"

    # --- teardown -------------------------------------------------------------------
    def teardown(self, store: BaselineStore, timeout: float) -> None:
        from kubernetes.client.exceptions import ApiException

        store.delete_requested = time.time()
        try:
            try:
                self._helm(store.uninstall_args or ["uninstall", store.release, "--namespace", store.namespace])
            except RuntimeError as exc:
                if "not found" not in str(exc).lower():
                    raise
            try:
                self.core().delete_namespace(store.namespace, propagation_policy="Foreground", _request_timeout=20)
            except ApiException as exc:
                if exc.status != 404:
                    raise
            deadline = time.monotonic() + timeout
            while not self._gone(store.namespace):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"namespace {store.namespace} still there after {timeout:.0f}s")
                time.sleep(0.5)
            store.deleted = time.time()
        except Exception as exc:  # noqa: BLE001
            store.delete_error = f"{type(exc).__name__}: {str(exc)[:300]}"

    def _gone(self, namespace: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core().read_namespace(namespace, _request_timeout=20)
            return False
        except ApiException as exc:
            if exc.status != 404:
                raise
        pvs = self.core().list_persistent_volume(_request_timeout=20).items
        return not any(pv.spec.claim_ref and pv.spec.claim_ref.namespace == namespace for pv in pvs)


def provision(runner: Runner, stores: list[BaselineStore], parallelism: int) -> dict:
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="baseline") as pool:
        list(pool.map(runner.provision, stores))
    ready = [s for s in stores if s.ready is not None]
    total = (max(s.ready for s in ready) - t0) if ready else None
    phases: dict[str, list[float]] = {}
    for s in ready:
        for label, seconds in s.phases.items():
            phases.setdefault(label, []).append(seconds)
    return {
        "stores": len(stores),
        "ready": len(ready),
        "failed": sum(1 for s in stores if s.error),
        "total_seconds": round(total, 3) if total is not None else None,
        "per_store_seconds": summary([s.ready - s.requested for s in ready]),
        "stores_per_minute": round(len(ready) / (total / 60), 2) if total else None,
        "phases_seconds": {label: summary(values) for label, values in phases.items()},
        "errors": [f"{s.namespace}: {s.error}" for s in stores if s.error][:20],
    }


def teardown(runner: Runner, stores: list[BaselineStore], parallelism: int, timeout: float) -> dict:
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="baseline-rm") as pool:
        list(pool.map(lambda s: runner.teardown(s, timeout), stores))
    done = [s for s in stores if s.deleted is not None]
    total = (max(s.deleted for s in done) - t0) if done else None
    return {
        "stores": len(stores),
        "deleted": len(done),
        "failed": sum(1 for s in stores if s.delete_error),
        "total_seconds": round(total, 3) if total is not None else None,
        "per_store_seconds": summary([s.deleted - s.delete_requested for s in done]),
        "stores_per_minute": round(len(done) / (total / 60), 2) if total else None,
        "errors": [f"{s.namespace}: {s.delete_error}" for s in stores if s.delete_error][:20],
    }


def cleanup_leftovers(runner: Runner) -> list[str]:
    """Remove any namespace of this run's baseline that is still there (after a failure or Ctrl-C)."""
    items = runner.core().list_namespace(label_selector=f"{LABEL_BENCH_RUN}={runner.run_id}").items
    names = []
    for ns in items:
        store_id = int(ns.metadata.labels.get("store-orchestrator.io/store-id", "0"))
        release = ns.metadata.name  # release and namespace names are the same for these stores
        leftover = BaselineStore(0, "", store_id, "", ns.metadata.name, release, {}, "")
        runner.teardown(leftover, timeout=120)
        names.append(ns.metadata.name)
    return names
