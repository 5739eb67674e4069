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

from .fleet import MeasuredStore, namespace_gone, provisioning_figures, store_specs, teardown_figures

BENCH_MANAGED_BY = "store-orchestrator-bench"
LABEL_BENCH_RUN = "store-orchestrator.io/bench-run"
FAKE_ID_BASE = 900_000_000  # baseline "store ids": far above any real id


@dataclass
class BaselineStore(MeasuredStore):
    install_args: list[str] = field(default_factory=list)  # the orchestrator's helm upgrade, plus --wait
    install_stdin: bytes = b""
    test_args: list[str] = field(default_factory=list)  # the orchestrator's helm test
    uninstall_args: list[str] = field(default_factory=list)  # the orchestrator's helm uninstall


class _Captured(Exception):
    pass


def orchestrator_commands(namespace: str, release: str, engine: str, values: dict) -> dict:
    """The helm command lines (and stdin) the orchestrator's HelmGateway runs to install and test a store.

    They are recorded from the gateway itself (its pyhelm3 client's `run` is intercepted, nothing is
    executed except `helm show chart`), so the baseline follows any change to the gateway's flags.
    """
    from stores_app.helm import HelmError, HelmGateway, command_line

    gateway = HelmGateway()
    command = gateway.client._command
    original = command.run
    recorded: list[tuple[list[str], bytes | None]] = []

    async def record(args, input=None):  # noqa: A002 (pyhelm3's parameter name)
        if list(args[:2]) == ["show", "chart"]:
            return await original(args, input)
        recorded.append((command_line([str(a) for a in args]), input))
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
    return [
        BaselineStore(**vars(spec), **orchestrator_commands(spec.namespace, spec.release, spec.engine, spec.values))
        for spec in store_specs(FAKE_ID_BASE, f"b{run_id}", n, engines)
    ]


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
        return namespace_gone(self.core(), namespace)


def provision(runner: Runner, stores: list[BaselineStore], parallelism: int) -> dict:
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="baseline") as pool:
        list(pool.map(runner.provision, stores))
    return provisioning_figures(stores, t0)


def teardown(runner: Runner, stores: list[BaselineStore], parallelism: int, timeout: float) -> dict:
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="baseline-rm") as pool:
        list(pool.map(lambda s: runner.teardown(s, timeout), stores))
    return teardown_figures(stores, t0)


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
