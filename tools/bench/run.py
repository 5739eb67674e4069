"""Store Orchestrator benchmark: provisioning, a rollout of a new chart version, and teardown through the
API against raw helm, in-flight capacity, API latency and SQL queries with many stores, and memory
footprint.

    tools/dev/bench.sh [--n 20|50|200] [options]      (make bench BENCH_ARGS="--n 50")

Needs Postgres and Redis (DATABASE_URL/REDIS_URL as tools/dev/services.sh prints them), a cluster
(KUBECONFIG) and helm (HELM_BIN or PATH). Prints a table and writes results/bench-<time>-n<N>.json
and .md (and results/bench-latest.*). Figures are printed, never asserted. See README.md, "Performance".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import secrets
import string
import sys
import time
import traceback
from pathlib import Path

from .benchlib import api, baseline, capacity, live, orchestrator_run, report, rollout
from .benchlib.control_plane import ControlPlaneSampler
from .benchlib.env import REPO, Config, Environment

# "rollout" upgrades the stores of the orchestrator and baseline sections between their provisioning
# and their teardown (benchlib/rollout.py).
# "flux" is the third column: the same stores as HelmReleases reconciled by Flux's helm-controller
# (tools/flux). It builds Flux's controllers from Go modules the first time (cached), so it is asked for
# by name: --sections orchestrator,baseline,flux,api.
SECTIONS = ("orchestrator", "baseline", "api", "rollout", "flux")
DEFAULT_SECTIONS = ("orchestrator", "baseline", "api", "rollout")


def parse_args(argv: list[str]) -> Config:
    p = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=20, help="stores to provision and tear down (default 20)")
    p.add_argument("--engines", default="woocommerce", help="comma list, used in turn (default woocommerce)")
    p.add_argument("--users", type=int, default=4, help="API users creating stores at once (default 4)")
    p.add_argument(
        "--parallelism", type=int, default=0, help="stores in flight at once, both sides (default 0: all N at once)"
    )
    p.add_argument("--worker-processes", type=int, default=1, help="celery worker processes (default 1)")
    p.add_argument(
        "--concurrency", type=int, default=4, help="celery --concurrency per process (default 4, as the chart)"
    )
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn --workers (default 2)")
    p.add_argument("--web-threads", type=int, default=4, help="gunicorn --threads (default 4)")
    p.add_argument("--api-stores", type=int, default=1000, help="stores in the database for the API section")
    p.add_argument("--api-requests", type=int, default=300, help="timed requests per API endpoint")
    p.add_argument("--timeout", type=float, default=1200, help="seconds a phase may take before giving up")
    p.add_argument(
        "--sections",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma list of {', '.join(SECTIONS)} (default {','.join(DEFAULT_SECTIONS)})",
    )
    p.add_argument(
        "--flux-concurrent", type=int, default=10, help="helm-controller --concurrent (default 10, as Flux's benchmark)"
    )
    p.add_argument(
        "--checkpoint",
        type=int,
        default=100,
        help="with more stores than this, the reconciler and the lists are measured once this many of the "
        "orchestrator's stores are ready (while the rest come up), and again with all N (default 100; 0: only at N)",
    )
    p.add_argument(
        "--resize-cluster",
        action="store_true",
        help="add simulated nodes when the stores do not fit (tools/dev/bench.sh sets it for the simulated cluster)",
    )
    p.add_argument("--baseline-first", action="store_true", help="run raw helm before the orchestrator")
    p.add_argument(
        "--profile",
        action="store_true",
        help="profile the worker's tasks and API requests with pyinstrument (slower; <run dir>/profile/)",
    )
    p.add_argument("--db-name", default="orchestrator_bench", help="database (dropped and created each run)")
    p.add_argument("--redis-db-base", type=int, default=10, help="first of three Redis databases used")
    p.add_argument("--out", default=str(REPO / "results"), help="results directory (default results/)")
    p.add_argument("--label", default="", help="free text stored with the result (e.g. 'patched')")
    p.add_argument("--skip-capacity-check", action="store_true", help="start even if the cluster looks too small")
    a = p.parse_args(argv)
    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections: {', '.join(sorted(unknown))}")
    cfg = Config(
        n=a.n,
        engines=[e.strip() for e in a.engines.split(",") if e.strip()],
        users=a.users,
        parallelism=a.parallelism,
        worker_processes=a.worker_processes,
        concurrency=a.concurrency,
        web_workers=a.web_workers,
        web_threads=a.web_threads,
        api_stores=a.api_stores,
        api_requests=a.api_requests,
        timeout=a.timeout,
        sections=sections,
        baseline_first=a.baseline_first,
        profile=a.profile,
        db_name=a.db_name,
        redis_db_base=a.redis_db_base,
        out_dir=Path(a.out),
        run_id="".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(4)),
        label=a.label,
        skip_capacity_check=a.skip_capacity_check,
        flux_concurrent=a.flux_concurrent,
        checkpoint=a.checkpoint,
        resize_cluster=a.resize_cluster,
    )
    return cfg


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> str:
    cpus = os.cpu_count()
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) / 2**20
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{cpus} CPUs ({model}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def _own_cpu() -> dict[str, float]:
    """CPU of this process (the baseline's Kubernetes calls) and of the helm processes it ran."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"python": me.ru_utime + me.ru_stime, "helm": kids.ru_utime + kids.ru_stime}


def _cpu_per_store(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    return {key: round((after[key] - before[key]) / max(1, n), 3) for key in before}


class Bench:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.stem = f"bench-{stamp}-n{cfg.n}"
        self.run_dir = cfg.out_dir / self.stem
        self.env = Environment(cfg, self.run_dir)
        self.result: dict = {
            "meta": {
                "started": dt.datetime.now().isoformat(timespec="seconds"),
                "run_id": cfg.run_id,
                "label": cfg.label,
                "n": cfg.n,
                "engines": cfg.engines,
                "users": cfg.users,
                "parallelism": cfg.effective_parallelism,
                "worker_processes": cfg.worker_processes,
                "concurrency": cfg.concurrency,
                "worker_slots": cfg.worker_slots,
                "web_workers": cfg.web_workers,
                "web_threads": cfg.web_threads,
                "profiled": cfg.profile,
                "sections": cfg.sections,
                "machine": machine(),
                "run_dir": str(self.run_dir),
            }
        }
        self.orch_stores: list[orchestrator_run.StoreRun] = []
        self.runner: baseline.Runner | None = None
        self.control_plane = ControlPlaneSampler(self.env.kubeconfig)

    # --- phases ---------------------------------------------------------------------
    def prepare(self) -> None:
        log(f"run {self.cfg.run_id}: database {self.cfg.db_name}, logs in {self.run_dir}/logs")
        self.env.create_database()
        self.env.flush_redis()
        self.env.setup_django()
        from django.conf import settings

        self.runner = baseline.Runner(
            self.cfg.run_id,
            self.env.helm,
            self.env.kubeconfig,
            settings.HELM_TIMEOUT_SECONDS,
            settings.HELM_TEST_TIMEOUT_SECONDS,
        )
        self.result["meta"]["helm"] = self.env.helm
        self.result["meta"]["smoke_test"] = settings.STORE_SMOKE_TEST
        self.env.memory.start()
        self.control_plane.start()
        self.check_capacity()

    def check_capacity(self) -> None:
        if not ({"orchestrator", "baseline", "flux"} & set(self.cfg.sections)):
            return
        from django.conf import settings

        samples = baseline.make_stores(self.cfg.run_id, len(self.cfg.engines), self.cfg.engines)
        charts = {s.engine: (str(Path(settings.STORE_CHARTS_DIR) / s.engine), s.values) for s in samples}
        # Every store of a column stays up until that column's teardown: all N are live at once.
        at_once = {}
        for i in range(self.cfg.n):
            engine = self.cfg.engines[i % len(self.cfg.engines)]
            at_once[engine] = at_once.get(engine, 0) + 1
        room = capacity.check(self.env.helm, self.env.kubeconfig, charts, at_once)
        if not room["fits"] and self.cfg.resize_cluster:
            log(
                f"cluster: {room['nodes']} nodes hold fewer than {self.cfg.n} stores; adding simulated nodes "
                f"up to {room['nodes_needed']}"
            )
            capacity.resize_simulated_cluster(room["nodes_needed"])
            room = capacity.check(self.env.helm, self.env.kubeconfig, charts, at_once)
        self.result["meta"]["cluster"] = {
            "nodes": room["nodes"],
            "nodes_needed": room["nodes_needed"],
            "per_store": room["per_store"],
        }
        if not room["fits"]:
            message = (
                f"the cluster ({room['nodes']} nodes) has no room for {self.cfg.n} stores at once; start the "
                f"simulated cluster with SIMCLUSTER_NODES={room['nodes_needed']} (tools/dev/bench.sh adds them "
                "itself when it runs the simulated cluster)"
            )
            if not self.cfg.skip_capacity_check:
                raise SystemExit(f"bench: {message}")
            log(f"warning: {message}")

    def run_orchestrator(self) -> None:
        cfg = self.cfg
        log(f"orchestrator: starting gunicorn, {cfg.worker_processes} worker(s) × {cfg.concurrency}, beat")
        web = self.env.start_web("web")
        profile_dir = self.run_dir / "profile" if cfg.profile else None
        self.env.start_workers(profile_dir=profile_dir)
        self.env.start_beat()
        users = self.env.make_users(f"bench-{cfg.run_id}-u", cfg.users, web)
        tokens = [token for _, token in users]
        ((staff, staff_token),) = self.env.make_users(f"bench-{cfg.run_id}-staff", 1, web, staff=True)
        self.orch_stores = [
            orchestrator_run.StoreRun(
                index=i, name=f"o{cfg.run_id} {i}", engine=cfg.engines[i % len(cfg.engines)], user=i % cfg.users
            )
            for i in range(cfg.n)
        ]
        live_figures = self.result.setdefault("live", {})

        def measure_live(key: str) -> None:
            ids = [s.store_id for s in self.orch_stores if s.store_id is not None]
            live_figures[key] = figures = live.measure(web, staff_token, staff, ids)
            log(
                f"orchestrator: {figures['ready_stores']} stores ready: reconciler pass "
                f"{figures['reconcile_pass_ms']['median']} ms, API list p50 {figures['api_list_ms']['p50']} ms, "
                f"dashboard list p50 {figures['dashboard_list_ms']['p50']} ms"
            )

        checkpoint_at = cfg.checkpoint if 0 < cfg.checkpoint < cfg.n else 0
        log(
            f"orchestrator: creating {cfg.n} stores through POST /api/stores/"
            + (f" (measuring with {checkpoint_at} live on the way)" if checkpoint_at else "")
        )
        cpu0 = self.env.memory.cpu_seconds("worker")
        self.control_plane.mark("orchestrator")
        up = orchestrator_run.provision(
            web,
            tokens,
            self.orch_stores,
            cfg.effective_parallelism,
            cfg.timeout,
            checkpoint_at=checkpoint_at,
            on_checkpoint=lambda: measure_live("checkpoint"),
        )
        cpu1 = self.env.memory.cpu_seconds("worker")
        up["cpu_seconds_per_store"] = _cpu_per_store(cpu0, cpu1, cfg.n)
        up["control_plane"] = self.control_plane.report("orchestrator")
        log(f"orchestrator: {up['ready']}/{cfg.n} ready in {up['total_seconds']} s")
        self.result.setdefault("provisioning", {})["orchestrator"] = up
        measure_live("all")
        self.result["inflight"] = {
            "worker_processes": cfg.worker_processes,
            "concurrency": cfg.concurrency,
            "worker_slots": cfg.worker_slots,
            "max_provisioning_sampled": up["max_provisioning_sampled"],
            "max_provisioning_from_timestamps": up["max_provisioning_from_timestamps"],
            "exceeds_worker_slots": max(up["max_provisioning_sampled"], up["max_provisioning_from_timestamps"])
            > cfg.worker_slots,
        }
        if "rollout" in cfg.sections:
            cpu1 = self.rollout_orchestrator(web, staff_token, cpu1)
        log("orchestrator: deleting through the API")
        self.control_plane.mark("orchestrator")
        down = orchestrator_run.teardown(web, tokens, self.orch_stores, cfg.effective_parallelism, cfg.timeout)
        down["cpu_seconds_per_store"] = _cpu_per_store(cpu1, self.env.memory.cpu_seconds("worker"), cfg.n)
        down["control_plane"] = self.control_plane.report("orchestrator")
        log(f"orchestrator: {down['deleted']}/{down['stores']} deleted in {down['total_seconds']} s")
        self.result.setdefault("teardown", {})["orchestrator"] = down
        self.env.stop({"worker", "beat", "web"})
        if profile_dir is not None and profile_dir.exists():
            self.result["profile"] = report.render_profiles(profile_dir)

    def rollout_orchestrator(self, web: str, token: str, cpu0: dict[str, float]) -> dict[str, float]:
        """The provisioned stores move to a new chart version in a rollout (started by the staff user whose
        token this is); returns the worker CPU after it."""
        cfg = self.cfg
        with rollout.NewVersion(self.env.charts_dir, cfg.engines) as versions:
            log(f"orchestrator: rollout of {cfg.n} stores to {versions}, {cfg.effective_parallelism} at once")
            moved = rollout.orchestrator(web, token, cfg.engines, cfg.effective_parallelism, cfg.timeout)
            cpu1 = self.env.memory.cpu_seconds("worker")
        moved["cpu_seconds_per_store"] = _cpu_per_store(cpu0, cpu1, cfg.n)
        log(f"orchestrator: {moved['upgraded']}/{cfg.n} upgraded in {moved['total_seconds']} s")
        self.result.setdefault("upgrade", {})["orchestrator"] = moved
        return cpu1

    def run_baseline(self) -> None:
        cfg = self.cfg
        assert self.runner is not None
        stores = baseline.make_stores(cfg.run_id, cfg.n, cfg.engines)
        log(f"baseline: raw helm for {cfg.n} stores, {cfg.effective_parallelism} at once")
        first = stores[0]
        self.result["meta"]["baseline_commands"] = {
            "install": " ".join(["helm", *first.install_args]),
            "test": " ".join(["helm", *first.test_args]),
            "uninstall": " ".join(["helm", *first.uninstall_args]),
            "values": first.values,
        }
        cpu0 = _own_cpu()
        self.control_plane.mark("baseline")
        up = baseline.provision(self.runner, stores, cfg.effective_parallelism)
        cpu1 = _own_cpu()
        up["cpu_seconds_per_store"] = _cpu_per_store(cpu0, cpu1, cfg.n)
        up["control_plane"] = self.control_plane.report("baseline")
        log(f"baseline: {up['ready']}/{cfg.n} ready in {up['total_seconds']} s; uninstalling")
        self.result.setdefault("provisioning", {})["baseline"] = up
        if "rollout" in cfg.sections:
            with rollout.NewVersion(self.env.charts_dir, cfg.engines) as versions:
                log(f"baseline: raw helm upgrade of {cfg.n} stores to {versions}, {cfg.effective_parallelism} at once")
                cpu = _own_cpu()
                moved = rollout.baseline(self.runner, stores, cfg.effective_parallelism)
                moved["cpu_seconds_per_store"] = _cpu_per_store(cpu, _own_cpu(), cfg.n)
            log(f"baseline: {moved['upgraded']}/{cfg.n} upgraded in {moved['total_seconds']} s")
            self.result.setdefault("upgrade", {})["baseline"] = moved
            cpu1 = _own_cpu()
        self.control_plane.mark("baseline")
        down = baseline.teardown(self.runner, stores, cfg.effective_parallelism, cfg.timeout)
        down["cpu_seconds_per_store"] = _cpu_per_store(cpu1, _own_cpu(), cfg.n)
        down["control_plane"] = self.control_plane.report("baseline")
        log(f"baseline: {down['deleted']}/{down['stores']} deleted in {down['total_seconds']} s")
        self.result.setdefault("teardown", {})["baseline"] = down

    def run_api(self) -> None:
        cfg = self.cfg
        log(f"api: {cfg.api_stores} stores in the database; gunicorn on a broker no worker reads")
        web = self.env.start_web("web-api", broker_url=self.env.sink_broker_url)
        (small, _), (big, big_token) = self.env.make_users(f"bench-{cfg.run_id}-api", 2, web)
        api.insert_stores(small, 10, f"s{cfg.run_id}")
        api.insert_stores(big, cfg.api_stores, f"l{cfg.run_id}")
        latency = api.latency(web, big_token, cfg.api_requests, f"p{cfg.run_id}")
        queries = api.query_counts(small, big, 10, cfg.api_stores, f"q{cfg.run_id}")
        self.result["api"] = {"stores": cfg.api_stores, "latency": latency, "queries": queries}
        if cfg.profile:
            profiles = api.profile_requests(big, self.run_dir / "profile", 50, f"r{cfg.run_id}")
            self.result.setdefault("profile", {}).update(profiles)
        self.env.stop({"web-api"})
        from stores_app.models import Store

        Store.objects.filter(owner__in=[small, big]).delete()
        self.env.flush_redis()
        log(
            f"api: POST p99 {latency['create']['p99']} ms, GET p99 {latency['list']['p99']} ms, "
            f"list queries {queries['small']['list_queries']} vs {queries['large']['list_queries']}"
        )

    def run_flux(self) -> None:
        """The same stores as HelmReleases, reconciled by Flux's helm-controller (tools/flux/peer.py), at the
        same parallelism; its CPU is the controllers' (helm runs inside helm-controller)."""
        from tools.flux.peer import FluxPeer

        cfg = self.cfg
        peer = FluxPeer(
            self.env.kubeconfig,
            self.env.helm,
            concurrent=cfg.flux_concurrent,
            log_dir=self.env.run_dir / "flux",
            run_id=cfg.run_id,
            log=log,
        )
        try:
            peer.start()
            log(f"flux: {cfg.n} HelmReleases, {cfg.effective_parallelism} at once, --concurrent={cfg.flux_concurrent}")
            self.control_plane.mark("flux")
            up = peer.provision(cfg.n, cfg.effective_parallelism, cfg.engines, cfg.timeout)
            up["control_plane"] = self.control_plane.report("flux")
            self.result.setdefault("provisioning", {})["flux"] = up
            log(f"flux: {up['ready']}/{cfg.n} ready in {up['total_seconds']} s; deleting")
            self.control_plane.mark("flux")
            down = peer.teardown(cfg.effective_parallelism, cfg.timeout)
            down["control_plane"] = self.control_plane.report("flux")
            self.result.setdefault("teardown", {})["flux"] = down
            log(f"flux: {down['deleted']}/{down['stores']} deleted in {down['total_seconds']} s")
        finally:
            peer.stop()
        self.result.setdefault("flux", {})["controllers"] = peer.usage()

    # --- the whole run --------------------------------------------------------------
    def run(self) -> int:
        failed = False
        try:
            self.prepare()
            order = ["orchestrator", "baseline"]
            if self.cfg.baseline_first:
                order.reverse()
            for section in [*order, "flux", "api"]:
                if section in self.cfg.sections:
                    getattr(self, f"run_{section}")()
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 (report what we have, then clean up)
            failed = True
            self.result["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            self.env.stop()
            self.cleanup()
            if self.env.memory.is_alive():
                self.env.memory.stop()
            if self.control_plane.is_alive():
                self.control_plane.stop()
            self.result["footprint"] = self.env.memory.report()
        self.finish()
        shortfalls = store_shortfalls(self.result)
        for line in shortfalls:
            log(f"FAILED: {line}")
        return 1 if failed or shortfalls else 0

    def cleanup(self) -> None:
        """Leave nothing of this run in the cluster, whatever happened."""
        if self.runner is None:
            return
        try:
            left = baseline.cleanup_leftovers(self.runner)
            if left:
                log(f"cleanup: removed baseline namespaces {', '.join(left)}")
            from stores_app.models import Store

            leftover = Store.objects.filter(name__startswith=f"o{self.cfg.run_id} ").exclude(status="deleted")
            for store in leftover.exclude(namespace=None):
                ghost = baseline.BaselineStore(0, "", store.pk, "", store.namespace, store.release_name, {}, "")
                self.runner.teardown(ghost, timeout=120)
                log(f"cleanup: removed orchestrator namespace {store.namespace}")
        except Exception as exc:  # noqa: BLE001
            log(f"cleanup failed: {exc}")

    def finish(self) -> None:
        self.result["meta"]["finished"] = dt.datetime.now().isoformat(timespec="seconds")
        paths = report.write(self.result, self.cfg.out_dir, self.stem)
        print(report.render_text(self.result))
        print()
        print(f"Results: {paths['json']}  {paths['markdown']}  (logs: {self.run_dir / 'logs'})")
        if "profile" in self.result:
            print("Profiles: " + json.dumps({k: v["text"] for k, v in self.result["profile"].items()}))


def store_shortfalls(result: dict) -> list[str]:
    """Every side of provisioning and teardown where a store failed or never finished. A benchmark of
    stores that did not come up measures nothing, so the run must not pass for a success."""
    lines = []
    for section, done_key in (("provisioning", "ready"), ("upgrade", "upgraded"), ("teardown", "deleted")):
        for side, figures in result.get(section, {}).items():
            missing = figures["stores"] - figures.get(done_key, 0)
            if figures.get("failed") or missing:
                errors = "; ".join(figures.get("errors", [])[:3])
                lines.append(
                    f"{section} ({side}): {figures.get(done_key, 0)} of {figures['stores']} {done_key}, "
                    f"{figures.get('failed', 0)} failed, {figures.get('unfinished', 0)} unfinished. {errors}"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    return Bench(cfg).run()
