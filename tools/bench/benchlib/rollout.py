"""Upgrading every store to a new chart version: the orchestrator's rollout against raw `helm upgrade`.

The run's charts are a copy (STORE_CHARTS_DIR of every process) whose Chart.yaml versions this module
moves: the stores are provisioned on the charts as they are, then the copy becomes a new version (the
same chart, `version` bumped, so every object's `helm.sh/chart` label changes and every pod rolls),
then both sides move their stores to it at the same parallelism, and the copy goes back for the next
side. The orchestrator's side is a rollout through the staff API whose waves are `parallelism` stores
each, all of a wave at once (canary = concurrency = parallelism, growth 1), so it compares the machinery
(health gate, helm test, the task chain, the rollout's waves), not a cautious policy. Raw helm runs the
very `helm upgrade` command line the gateway runs, plus `--wait --wait-for-jobs`, then its `helm test`.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from .stats import summary


def copy_charts(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("ci", "README.md"), dirs_exist_ok=True)
    return target


def chart_version(charts_dir: Path, engine: str) -> str:
    return re.search(r"(?m)^version: (\S+)$", (charts_dir / engine / "Chart.yaml").read_text()).group(1)


def set_chart_version(charts_dir: Path, engine: str, version: str) -> None:
    chart = charts_dir / engine / "Chart.yaml"
    chart.write_text(re.sub(r"(?m)^version: .*$", f"version: {version}", chart.read_text()))


def next_version(version: str) -> str:
    """The next patch version: what a chart fix would be released as."""
    major, minor, patch = version.split("-")[0].split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


class NewVersion:
    """`with NewVersion(charts_dir, engines):` the charts are one patch version newer inside the block."""

    def __init__(self, charts_dir: Path, engines: list[str]):
        self.charts_dir, self.engines = charts_dir, sorted(set(engines))
        self.old = {engine: chart_version(charts_dir, engine) for engine in self.engines}

    def __enter__(self) -> dict[str, str]:
        for engine, version in self.old.items():
            set_chart_version(self.charts_dir, engine, next_version(version))
        return {engine: next_version(version) for engine, version in self.old.items()}

    def __exit__(self, *exc) -> None:
        for engine, version in self.old.items():
            set_chart_version(self.charts_dir, engine, version)


# --- the orchestrator's side ------------------------------------------------------------------------


def orchestrator(web_url: str, staff_token: str, engines: list[str], parallelism: int, timeout: float) -> dict:
    """One rollout per engine through POST /api/rollouts/; waits until each has completed (or paused)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {staff_token}"
    policy = {"canary_size": parallelism, "growth": 1, "concurrency": parallelism, "failure_threshold": 100}
    t0 = time.time()
    rollouts = []
    for engine in sorted(set(engines)):
        response = session.post(f"{web_url}/api/rollouts/", json={"engine": engine, **policy}, timeout=60)
        if response.status_code != 201:
            return {"stores": 0, "upgraded": 0, "failed": 0, "errors": [f"{engine}: HTTP {response.status_code}: "
                    f"{response.text[:300]}"]}  # fmt: skip
        rollouts.append(response.json()["id"])
    finished = _wait_for_rollouts(rollouts, timeout)
    return _report(rollouts, t0, finished, policy)


def _wait_for_rollouts(rollouts: list[int], timeout: float) -> bool:
    from django.db import connection

    from stores_app.models import Rollout

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not Rollout.objects.filter(pk__in=rollouts, state="running").exists():
                return True
            time.sleep(0.25)
        return False
    finally:
        connection.close()


def _report(rollouts: list[int], t0: float, finished: bool, policy: dict) -> dict:
    from django.db import connection

    from stores_app.models import Rollout, StoreUpgrade

    upgrades = list(StoreUpgrade.objects.filter(rollout_id__in=rollouts).select_related("store"))
    done = [u for u in upgrades if u.state == StoreUpgrade.State.SUCCEEDED]
    ends = [u.finished_at.timestamp() for u in done]
    total = (max(ends) - t0) if ends else None
    stores = sum(Rollout.objects.get(pk=pk).items.count() for pk in rollouts)
    failed = [u for u in upgrades if u.state in (StoreUpgrade.State.ROLLED_BACK, StoreUpgrade.State.FAILED)]
    connection.close()
    return {
        "stores": stores,
        "upgraded": len(done),
        "failed": len(failed),
        "unfinished": 0 if finished else stores - len(done) - len(failed),
        "policy": policy,
        "total_seconds": round(total, 3) if total is not None else None,
        "per_store_seconds": summary([(u.finished_at - u.requested_at).total_seconds() for u in done]),
        "stores_per_minute": round(len(done) / (total / 60), 2) if total else None,
        "errors": [f"{u.store.name}: {u.message[:300]}" for u in failed][:20],
    }


# --- raw helm ---------------------------------------------------------------------------------------


def baseline(runner, stores: list, parallelism: int) -> dict:
    """`helm upgrade … --wait --wait-for-jobs` and `helm test` per store, `parallelism` at once."""
    from .baseline import orchestrator_commands

    for store in stores:  # the gateway's command lines for the new chart version
        commands = orchestrator_commands(store.namespace, store.release, store.engine, store.values)
        store.install_args, store.install_stdin = commands["install_args"], commands["install_stdin"]
    results: dict[int, tuple[float, float | None, str]] = {}
    lock = threading.Lock()

    def upgrade(store) -> None:
        started, error = time.time(), ""
        try:
            runner._helm(store.install_args, stdin=store.install_stdin, timeout=runner.helm_timeout + 60)
            runner._helm(store.test_args, timeout=runner.test_timeout + 60)
        except Exception as exc:  # noqa: BLE001 (recorded per store and reported)
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
        with lock:
            results[store.index] = (started, None if error else time.time(), error)

    t0 = time.time()
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="baseline-up") as pool:
        list(pool.map(upgrade, stores))
    ends = [end for _, end, _ in results.values() if end is not None]
    total = (max(ends) - t0) if ends else None
    errors = [error for _, _, error in results.values() if error]
    return {
        "stores": len(stores),
        "upgraded": len(ends),
        "failed": len(errors),
        "unfinished": 0,
        "total_seconds": round(total, 3) if total is not None else None,
        "per_store_seconds": summary([end - start for start, end, _ in results.values() if end is not None]),
        "stores_per_minute": round(len(ends) / (total / 60), 2) if total else None,
        "errors": errors[:20],
    }
