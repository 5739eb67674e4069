"""The benchmark's Flux peer: the raw-helm baseline's stores, created as HelmReleases that Flux's
helm-controller installs, waits for, tests and uninstalls.

Per store, in `parallelism` threads, as the baseline does: the namespace (same Pod Security and store
labels) and the credentials Secret (same keys, same generator) with the Kubernetes client, then a
HelmRelease with the same chart and values (`stores_app.provisioning.chart_values`). helm-controller
installs it waiting for every workload and Job (helm's --wait --wait-for-jobs), then runs the chart's
test: a store is ready when its HelmRelease is Ready, and failed when helm-controller reports a failed
Helm action or gives up (no remediation retries: a script calling helm once does not retry). Teardown:
delete the HelmRelease (helm-controller uninstalls the release, without waiting, like the
orchestrator's `helm uninstall`), then the namespace, and wait until it and its PersistentVolumes
are gone. Times are taken in this process when a watch on the HelmReleases reports each change.

    peer = FluxPeer(kubeconfig, helm, concurrent=10)   # Django configured first, as the benchmark does
    peer.start()                                       # build (cached), CRDs, chart repository, controllers
    try:
        up = peer.provision(20, parallelism=20)        # the summary baseline.provision returns
        down = peer.teardown(parallelism=20)           # the summary baseline.teardown returns
    finally:
        peer.stop()                                    # nothing of the run left in the cluster
    peer.usage()                                       # each controller's CPU seconds and peak RSS

Per-store records are `peer.stores` (FluxStore: requested, ready, phases, error, delete_requested,
deleted, delete_error, with the baseline's meaning). Everything of a run carries the label
`store-orchestrator.io/flux-run=<run id>`, and both controllers only watch objects with it, so two
runs on one cluster do not touch each other.
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import string
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tools.bench.benchlib.fleet import (
    MeasuredStore,
    namespace_gone,
    provisioning_figures,
    store_specs,
    teardown_figures,
)

from . import controllers
from .chart_repository import ChartRepository

HELMRELEASES = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
HELMREPOSITORIES = ("source.toolkit.fluxcd.io", "v1", "helmrepositories")
HELMCHARTS = ("source.toolkit.fluxcd.io", "v1", "helmcharts")
LABEL_RUN = "store-orchestrator.io/flux-run"
# The raw-helm baseline's managed-by value: no orchestrator sharing the cluster counts these as orphans.
BENCH_MANAGED_BY = "store-orchestrator-bench"
FAKE_ID_BASE = 950_000_000  # "store ids" of Flux's stores: apart from real ones and the baseline's (900M)
REPOSITORY_NAME = "stores"
PHASE_SETUP = "namespace + Secret"
PHASE_RELEASE = "HelmRelease → Released (chart pulled, install --wait, Jobs done)"
PHASE_TEST = "Released → Ready (helm test)"
PROGRESS_EVERY = 10.0  # seconds between progress lines while stores are in flight


def log(message: str) -> None:
    print(f"[flux {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class FluxStore(MeasuredStore):
    """One store on Flux's side; the time fields mean what the baseline's BaselineStore's do."""

    released: float | None = None  # when the watch first saw Released=True
    unfinished: bool = False  # neither ready nor given up on by helm-controller before the deadline
    status: str = ""  # the HelmRelease's last Ready reason and message, for the error of an unfinished store


# --- decisions on observed state (pure) ----------------------------------------------------------------
def _conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


# Ready=False reasons that report a failed Helm action: what a helm command exiting non-zero is to the
# baseline. helm-controller would try again later (after a backoff; forever when the release was never
# written, e.g. values the chart's schema rejects), but neither raw helm nor the orchestrator's first
# attempt would, so the store counts as failed at the first one.
FAILED_ACTIONS = {"InstallFailed", "UpgradeFailed", "TestFailed", "RollbackFailed", "UninstallFailed"}


def release_outcome(obj: dict) -> tuple[str, str]:
    """What a HelmRelease says about its store: ("ready" | "failed" | "pending", message).

    Ready counts only for the object's current generation; failed is a failed Helm action
    (FAILED_ACTIONS) or Stalled, helm-controller's own word that it will not try again unchanged.
    """
    conditions = _conditions(obj)
    ready, stalled = conditions.get("Ready", {}), conditions.get("Stalled", {})
    current = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"].get("generation")
    if ready.get("status") == "True" and current:
        return "ready", ""
    if ready.get("status") == "False" and ready.get("reason") in FAILED_ACTIONS:
        return "failed", f"{ready['reason']}: {ready.get('message', '')}"[:300]
    if stalled.get("status") == "True":
        return "failed", f"{stalled.get('reason')}: {ready.get('message') or stalled.get('message', '')}"[:300]
    return "pending", f"{ready.get('reason', 'no status yet')}: {ready.get('message', '')}"[:300]


def is_released(obj: dict) -> bool:
    return _conditions(obj).get("Released", {}).get("status") == "True"


def helmrelease_manifest(
    store: FluxStore,
    *,
    run_id: str,
    source_namespace: str,
    chart_version: str,
    helm_timeout: int,
    test_timeout: int,
    openapi_validation: bool = False,
) -> dict:
    """The HelmRelease of one store: the baseline's chart, version, values and timeouts, and helm's OpenAPI
    check on or off as the orchestrator's (HELM_OPENAPI_VALIDATION).

    The interval is long so that no periodic reconcile runs during a benchmark; the HelmChart that
    helm-controller makes from the template carries the run's label, so source-controller (which
    only watches the run's objects) sees it.
    """
    return {
        "apiVersion": f"{HELMRELEASES[0]}/{HELMRELEASES[1]}",
        "kind": "HelmRelease",
        "metadata": {"name": store.release, "namespace": store.namespace, "labels": {LABEL_RUN: run_id}},
        "spec": {
            "interval": "1h",
            "releaseName": store.release,
            "timeout": f"{helm_timeout}s",
            "chart": {
                "metadata": {"labels": {LABEL_RUN: run_id}},
                "spec": {
                    "chart": store.engine,
                    "version": chart_version,
                    "sourceRef": {"kind": "HelmRepository", "name": REPOSITORY_NAME, "namespace": source_namespace},
                    "interval": "1h",
                },
            },
            "install": {"remediation": {"retries": 0}, "disableOpenAPIValidation": not openapi_validation},
            "upgrade": {"disableOpenAPIValidation": not openapi_validation},
            "test": {"enable": True, "timeout": f"{test_timeout}s"},
            "uninstall": {"disableWait": True},
            "values": store.values,
        },
    }


# --- the peer --------------------------------------------------------------------------------------------
class FluxPeer:
    """Flux's controllers, a chart repository and the stores of one run; see the module docstring."""

    def __init__(
        self,
        kubeconfig: str,
        helm: str,
        *,
        concurrent: int = 10,
        source_concurrent: int = 10,
        helm_timeout: int | None = None,
        test_timeout: int | None = None,
        log_dir: Path | None = None,
        run_id: str = "",
        log: Callable[[str], None] = log,
    ):
        self.kubeconfig = kubeconfig
        self.helm = helm
        self.concurrent = concurrent
        self.source_concurrent = source_concurrent
        self.helm_timeout = helm_timeout
        self.test_timeout = test_timeout
        self.openapi_validation = False
        self.run_id = run_id or "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(4))
        self.source_namespace = f"flux-peer-{self.run_id}"
        self.selector = f"{LABEL_RUN}={self.run_id}"  # everything of this run, and all the controllers see
        self.log = log
        self.stores: list[FluxStore] = []
        self.workdir: Path | None = None
        self.log_dir = log_dir
        self.repository: ChartRepository | None = None
        self.processes: list[controllers.ControllerProcess] = []
        self._local = threading.local()
        self._by_namespace: dict[str, FluxStore] = {}
        self._settled: dict[str, threading.Event] = {}
        self._gone: dict[str, threading.Event] = {}
        self._watch: _ReleaseWatch | None = None
        self._last_progress = 0.0
        self._interrupted = threading.Event()  # set when a provision or teardown is interrupted

    # --- clients ---------------------------------------------------------------------------------------
    def _api(self):
        api = getattr(self._local, "api", None)
        if api is None:
            from kubernetes import config

            api = self._local.api = config.new_client_from_config(config_file=self.kubeconfig)
        return api

    def _core(self):
        from kubernetes import client

        return client.CoreV1Api(self._api())

    def _custom(self):
        from kubernetes import client

        return client.CustomObjectsApi(self._api())

    # --- start and stop ----------------------------------------------------------------------------------
    def start(self) -> FluxPeer:
        from django.conf import settings

        self.helm_timeout = self.helm_timeout or settings.HELM_TIMEOUT_SECONDS
        self.test_timeout = self.test_timeout or settings.HELM_TEST_TIMEOUT_SECONDS
        self.openapi_validation = settings.HELM_OPENAPI_VALIDATION
        self.workdir = Path(tempfile.mkdtemp(prefix=f"flux-peer-{self.run_id}-"))
        self.log_dir = self.log_dir or self.workdir / "logs"
        self.log("building helm-controller and source-controller (cached: seconds; cold: 6-15 min)")
        bin_dir = controllers.build()
        self.log("installing Flux's CRDs (about a second)")
        controllers.install_crds(self._api(), bin_dir)
        charts = sorted(p.parent for p in Path(settings.STORE_CHARTS_DIR).glob("*/Chart.yaml"))
        self.repository = ChartRepository(self.helm, self.workdir / "charts").start(charts)
        self.log(f"chart repository {self.repository.url}: {self.repository.versions}")
        self._start_controllers(bin_dir)
        self._create_repository_source()
        self._watch = _ReleaseWatch(self, self.selector)
        self._watch.start()
        return self

    def _start_controllers(self, bin_dir: Path) -> None:
        assert self.workdir is not None and self.log_dir is not None
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        storage = self.workdir / "artifacts"
        storage.mkdir()
        self.processes = [
            controllers.source_controller(bin_dir, env, self.log_dir, storage, self.source_concurrent, self.selector),
            controllers.helm_controller(bin_dir, env, self.log_dir, self.concurrent, self.selector),
        ]
        self.log(f"starting source-controller and helm-controller (--concurrent={self.concurrent}; a few seconds)")
        controllers.start_all(self.processes, self.log)

    def _create_repository_source(self, timeout: float = 60) -> None:
        """The shared HelmRepository every store's HelmChart points at, in a namespace of the run."""
        from kubernetes import client

        assert self.repository is not None
        labels = {"app.kubernetes.io/managed-by": BENCH_MANAGED_BY, LABEL_RUN: self.run_id}
        namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name=self.source_namespace, labels=labels))
        self._core().create_namespace(namespace, _request_timeout=20)
        body = {
            "apiVersion": f"{HELMREPOSITORIES[0]}/{HELMREPOSITORIES[1]}",
            "kind": "HelmRepository",
            "metadata": {"name": REPOSITORY_NAME, "namespace": self.source_namespace, "labels": labels},
            "spec": {"url": self.repository.url, "interval": "1h"},
        }
        group, version, plural = HELMREPOSITORIES
        self._custom().create_namespaced_custom_object(group, version, self.source_namespace, plural, body)
        deadline = time.monotonic() + timeout
        while True:
            obj = self._custom().get_namespaced_custom_object(
                group, version, self.source_namespace, plural, REPOSITORY_NAME
            )
            ready = _conditions(obj).get("Ready", {})
            if ready.get("status") == "True":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"HelmRepository not Ready after {timeout:.0f}s: {ready.get('message')}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Remove everything of the run from the cluster, then stop the controllers and the repository.

        HelmReleases, HelmCharts and the HelmRepository carry finalizers their controllers remove, so
        they are deleted while the controllers still run; finalizers left after that (a controller that
        died) are removed by hand, or the namespaces would never go.
        """
        try:
            self._remove_from_cluster()
        finally:
            if self._watch is not None:
                self._watch.stop()
            for process in reversed(self.processes):
                process.stop()
            self._force_remove_leftovers()
            if self.repository is not None:
                self.repository.stop()
            if self.workdir is not None:
                keep_logs = self.log_dir is not None and self.workdir in self.log_dir.parents and self._had_errors()
                if keep_logs:
                    self.log(f"keeping the controllers' logs of a run with errors: {self.log_dir}")
                shutil.rmtree(self.workdir / "artifacts", ignore_errors=True)
                shutil.rmtree(self.workdir / "charts", ignore_errors=True)
                if not keep_logs:
                    shutil.rmtree(self.workdir, ignore_errors=True)

    def _had_errors(self) -> bool:
        return any(s.error or s.delete_error for s in self.stores)

    def _remove_from_cluster(self, timeout: float = 180) -> None:
        from kubernetes.client.exceptions import ApiException

        if not any(p.alive() for p in self.processes):
            return
        group, version, plural = HELMRELEASES
        custom = self._custom()
        left = len(custom.list_cluster_custom_object(group, version, plural, label_selector=self.selector)["items"])
        if left:
            self.log(f"removing the run's {left} stores still in the cluster (about a minute per hundred)")
        for obj in custom.list_cluster_custom_object(group, version, plural, label_selector=self.selector)["items"]:
            try:
                custom.delete_namespaced_custom_object(
                    group, version, obj["metadata"]["namespace"], plural, obj["metadata"]["name"]
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
        deadline = time.monotonic() + timeout
        while custom.list_cluster_custom_object(group, version, plural, label_selector=self.selector)["items"]:
            if time.monotonic() > deadline:
                self.log("HelmReleases of the run still there after uninstalling; removing their finalizers")
                break
            time.sleep(1)
        self._delete_namespaces(deadline)

    def _delete_namespaces(self, deadline: float) -> None:
        from kubernetes.client.exceptions import ApiException

        core = self._core()
        for ns in core.list_namespace(label_selector=self.selector).items:
            try:
                core.delete_namespace(ns.metadata.name, _request_timeout=20)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        while core.list_namespace(label_selector=self.selector).items and time.monotonic() < deadline:
            time.sleep(1)

    def _force_remove_leftovers(self) -> None:
        """Strip the finalizers of the run's Flux objects no controller will handle, then delete namespaces."""
        try:
            custom, core = self._custom(), self._core()
            for group, version, plural in (HELMRELEASES, HELMCHARTS, HELMREPOSITORIES):
                for obj in self._list_or_none(group, version, plural):
                    meta = obj["metadata"]
                    if meta.get("finalizers"):
                        patch = {"metadata": {"finalizers": None}}
                        custom.patch_namespaced_custom_object(
                            group, version, meta["namespace"], plural, meta["name"], patch
                        )
            if core.list_namespace(label_selector=self.selector).items:
                self._delete_namespaces(time.monotonic() + 120)
            left = [ns.metadata.name for ns in core.list_namespace(label_selector=self.selector).items]
            if left:
                self.log(f"WARNING: namespaces of run {self.run_id} still there: {', '.join(left)}")
        except Exception as exc:  # noqa: BLE001 (stop must go on: the processes and temp dirs go all the same)
            self.log(f"WARNING: cleanup of run {self.run_id} failed: {type(exc).__name__}: {exc}")

    def _list_or_none(self, group: str, version: str, plural: str) -> list[dict]:
        """The run's objects of one kind; none when the CRD is not installed."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self._custom().list_cluster_custom_object(group, version, plural, label_selector=self.selector)[
                "items"
            ]
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise

    def usage(self) -> dict[str, dict[str, float]]:
        """Each controller's CPU seconds (user + system) and peak RSS (MiB) since it started."""
        out = {}
        for process in self.processes:
            cpu, rss = process.usage()
            out[process.name] = {"cpu_seconds": round(cpu, 2), "peak_rss_mib": round(rss, 1)}
        return out

    # --- stores ------------------------------------------------------------------------------------------
    def make_stores(self, n: int, engines: list[str]) -> list[FluxStore]:
        """Stores equivalent to the baseline's: the same naming rules and chart values."""
        return [FluxStore(**vars(spec)) for spec in store_specs(FAKE_ID_BASE, f"f{self.run_id}", n, engines)]

    def provision(
        self, n: int, parallelism: int, engines: list[str] | None = None, timeout: float | None = None
    ) -> dict:
        """Create `n` stores, `parallelism` at a time, and wait for each to be ready or failed.

        Returns the summary the baseline's provision returns (plus `unfinished` and `controllers`).
        `timeout` bounds each store from its request (default: helm's timeout + the test's + 60 s).
        """
        assert self._watch is not None, "start() first"
        stores = self.make_stores(n, engines or ["woocommerce"])
        self.stores.extend(stores)
        for store in stores:
            self._by_namespace[store.namespace] = store
            self._settled[store.namespace] = threading.Event()
            self._gone[store.namespace] = threading.Event()
        limit = timeout or (self.helm_timeout or 600) + (self.test_timeout or 300) + 60
        cpu0, usage0, t0 = _own_cpu(), self.usage(), time.time()
        self._run_all(stores, parallelism, lambda s: self._provision_one(s, limit), "ready", lambda s: s.ready)
        return {
            **provisioning_figures(stores, t0),
            "unfinished": sum(1 for s in stores if s.unfinished),
            **self._cost(cpu0, usage0, len(stores)),
        }

    def teardown(self, parallelism: int, timeout: float = 600) -> dict:
        """Delete every store provisioned so far, `parallelism` at a time; the baseline's teardown summary."""
        stores = [s for s in self.stores if s.deleted is None]
        cpu0, usage0, t0 = _own_cpu(), self.usage(), time.time()
        self._run_all(stores, parallelism, lambda s: self._teardown_one(s, timeout), "deleted", lambda s: s.deleted)
        return {**teardown_figures(stores, t0), **self._cost(cpu0, usage0, len(stores))}

    def _cost(self, cpu0: dict[str, float], usage0: dict, n: int) -> dict:
        """CPU per store in the benchmark's two columns (this process's API calls; helm, which runs
        inside helm-controller, with source-controller), and each controller's figures for the phase."""
        cpu1, usage1 = _own_cpu(), self.usage()
        spent = {name: usage1[name]["cpu_seconds"] - usage0[name]["cpu_seconds"] for name in usage1}
        return {
            "cpu_seconds_per_store": {
                "python": round((cpu1["python"] - cpu0["python"]) / max(1, n), 3),
                "helm": round(sum(spent.values()) / max(1, n), 3),
            },
            "controllers": {
                name: {"cpu_seconds": round(spent[name], 2), "peak_rss_mib": usage1[name]["peak_rss_mib"]}
                for name in usage1
            },
        }

    def _run_all(self, stores, parallelism, work, done_word, done_at) -> None:
        """Run `work` over the stores in a pool, with a progress line every PROGRESS_EVERY seconds.

        Interrupted (Ctrl-C), the stores still waiting give up within a second, so that stop() can
        remove them from the cluster at once instead of after their deadlines.
        """
        t0 = time.time()
        pool = ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="flux")
        try:
            pending: set[Future] = {pool.submit(work, s) for s in stores}
            while pending:
                _, pending = wait(pending, timeout=PROGRESS_EVERY, return_when=FIRST_COMPLETED)
                if pending and time.time() - self._last_progress >= PROGRESS_EVERY:
                    self._last_progress = time.time()
                    done = sum(1 for s in stores if done_at(s) is not None)
                    self.log(f"{done}/{len(stores)} {done_word}, {len(pending)} in flight ({time.time() - t0:.0f} s)")
        except BaseException:
            self._interrupted.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # --- one store -----------------------------------------------------------------------------------------
    def _provision_one(self, store: FluxStore, timeout: float) -> None:
        store.requested = time.time()
        deadline = time.monotonic() + timeout
        try:
            self._create_namespace_and_secret(store)
            store.phases[PHASE_SETUP] = time.time() - store.requested
            created = time.time()
            group, version, plural = HELMRELEASES
            body = helmrelease_manifest(
                store,
                run_id=self.run_id,
                source_namespace=self.source_namespace,
                chart_version=self._chart_version(store.engine),
                helm_timeout=self.helm_timeout or 600,
                test_timeout=self.test_timeout or 300,
                openapi_validation=self.openapi_validation,
            )
            self._custom().create_namespaced_custom_object(group, version, store.namespace, plural, body)
            self._await(store, self._settled[store.namespace], deadline, self._check_settled)
            if store.ready is not None and store.released is not None:
                store.phases[PHASE_RELEASE] = store.released - created
                store.phases[PHASE_TEST] = store.ready - store.released
        except TimeoutError as exc:
            store.unfinished = True
            store.error = str(exc)
        except Exception as exc:  # noqa: BLE001 (recorded per store and reported)
            store.error = store.error or f"{type(exc).__name__}: {str(exc)[:300]}"

    def _chart_version(self, engine: str) -> str:
        assert self.repository is not None
        if engine not in self.repository.versions:
            raise ValueError(f"no chart for engine {engine!r}; the repository has {sorted(self.repository.versions)}")
        return self.repository.versions[engine]

    def _create_namespace_and_secret(self, store: FluxStore) -> None:
        from kubernetes import client

        from stores_app.kube import LABEL_ENGINE, LABEL_MANAGED_BY, LABEL_OWNER_ID, LABEL_STORE_ID, SECRET_KEYS

        labels = {
            LABEL_MANAGED_BY: BENCH_MANAGED_BY,
            LABEL_STORE_ID: str(store.store_id),
            LABEL_OWNER_ID: "0",
            LABEL_ENGINE: store.engine,
            LABEL_RUN: self.run_id,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
        }
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=store.namespace, labels=labels))
        self._core().create_namespace(body, _request_timeout=20)
        secret_labels = {LABEL_MANAGED_BY: BENCH_MANAGED_BY, LABEL_STORE_ID: str(store.store_id)}
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name=store.secret_name, labels={**secret_labels, LABEL_ENGINE: store.engine}),
            type="Opaque",
            string_data={k: secrets.token_urlsafe(32) for k in SECRET_KEYS[store.engine]},
        )
        self._core().create_namespaced_secret(store.namespace, secret, _request_timeout=20)

    def _await(self, store: FluxStore, event: threading.Event, deadline: float, check: Callable) -> None:
        """Wait for the watch to report; every few seconds also ask the API (a watch can miss an event
        while it reconnects)."""
        next_check = time.monotonic() + 5
        while not event.wait(timeout=1):
            self._raise_if_interrupted()
            if time.monotonic() < next_check:
                continue
            next_check = time.monotonic() + 5
            check(store)
            if event.is_set():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not done within the deadline; last seen: {store.status or 'no status'}")

    def _raise_if_interrupted(self) -> None:
        if self._interrupted.is_set():
            raise RuntimeError("the run was interrupted")

    def _check_settled(self, store: FluxStore) -> None:
        from kubernetes.client.exceptions import ApiException

        group, version, plural = HELMRELEASES
        try:
            obj = self._custom().get_namespaced_custom_object(group, version, store.namespace, plural, store.release)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        self.observe(obj)

    def _teardown_one(self, store: FluxStore, timeout: float) -> None:
        from kubernetes.client.exceptions import ApiException

        store.delete_requested = time.time()
        deadline = time.monotonic() + timeout
        group, version, plural = HELMRELEASES
        try:
            try:
                self._custom().delete_namespaced_custom_object(group, version, store.namespace, plural, store.release)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self._gone[store.namespace].set()
            self._await(store, self._gone[store.namespace], deadline, self._check_gone)
            try:
                self._core().delete_namespace(store.namespace, propagation_policy="Foreground", _request_timeout=20)
            except ApiException as exc:
                if exc.status != 404:
                    raise
            while not self._namespace_gone(store.namespace):
                self._raise_if_interrupted()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"namespace {store.namespace} still there after {timeout:.0f}s")
                time.sleep(0.5)
            store.deleted = time.time()
        except Exception as exc:  # noqa: BLE001
            store.delete_error = f"{type(exc).__name__}: {str(exc)[:300]}"

    def _check_gone(self, store: FluxStore) -> None:
        from kubernetes.client.exceptions import ApiException

        group, version, plural = HELMRELEASES
        try:
            self._custom().get_namespaced_custom_object(group, version, store.namespace, plural, store.release)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self._gone[store.namespace].set()

    def _namespace_gone(self, namespace: str) -> bool:
        return namespace_gone(self._core(), namespace)

    # --- what the watch reports ------------------------------------------------------------------------------
    def observe(self, obj: dict, deleted: bool = False) -> None:
        """Record what one HelmRelease's state means for its store (called by the watch, and by polls)."""
        namespace = obj["metadata"]["namespace"]
        store = self._by_namespace.get(namespace)
        if store is None:
            return
        if deleted:
            self._gone[namespace].set()
            return
        settled = self._settled[namespace]
        if settled.is_set():
            return
        now = time.time()
        if store.released is None and is_released(obj):
            store.released = now
        outcome, message = release_outcome(obj)
        if outcome == "ready":
            store.ready = now
            store.released = store.released or now
            settled.set()
        elif outcome == "failed":
            store.error = message
            settled.set()
        else:
            store.status = message


def _own_cpu() -> dict[str, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {"python": me.ru_utime + me.ru_stime}


class _ReleaseWatch:
    """One watch on the run's HelmReleases, re-listing after a gap the server cannot replay (410)."""

    def __init__(self, peer: FluxPeer, selector: str):
        self.peer = peer
        self.selector = selector
        self._stopped = threading.Event()
        self._watch = None
        self._thread = threading.Thread(target=self._run, name="flux-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.stop()

    def _run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        version = None
        while not self._stopped.is_set():
            try:
                version = version or self._list()
                version = self._follow(version)
            except ApiException as exc:
                version = None
                if exc.status != 410:
                    time.sleep(1)
            except Exception as exc:  # noqa: BLE001 (the polls in _await cover the gap)
                if self._stopped.is_set():
                    return  # stop() closed the stream under the read
                version = None
                self.peer.log(f"HelmRelease watch interrupted ({type(exc).__name__}: {exc}); listing again")
                time.sleep(1)

    def _list(self) -> str:
        group, version, plural = HELMRELEASES
        listed = self.peer._custom().list_cluster_custom_object(group, version, plural, label_selector=self.selector)
        for obj in listed["items"]:
            self.peer.observe(obj)
        return listed["metadata"]["resourceVersion"]

    def _follow(self, resource_version: str) -> str | None:
        """Apply events until the server ends the watch; the version to resume from (None: list again)."""
        from kubernetes import watch

        group, version, plural = HELMRELEASES
        self._watch = watch.Watch()
        for event in self._watch.stream(
            self.peer._custom().list_cluster_custom_object,
            group,
            version,
            plural,
            label_selector=self.selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=120,
        ):
            if self._stopped.is_set():
                break
            obj = event["object"]
            if event["type"] == "ERROR":
                return None
            resource_version = obj["metadata"]["resourceVersion"]
            if event["type"] != "BOOKMARK":
                self.peer.observe(obj, deleted=event["type"] == "DELETED")
        return resource_version


def store_records(stores: list[FluxStore]) -> list[dict]:
    """Per-store records for a results file (values left out: the same for every store, and long)."""
    return [{k: v for k, v in vars(s).items() if k != "values"} for s in stores]


def remove_leftovers(kubeconfig: str, helm: str) -> None:
    """Remove what any interrupted run left in the cluster: the Flux objects' finalizers (no controller
    runs to handle them) and every namespace labelled with LABEL_RUN. Only while no run is going on."""
    peer = FluxPeer(kubeconfig, helm)
    peer.selector = LABEL_RUN
    peer._force_remove_leftovers()
