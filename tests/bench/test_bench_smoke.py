"""The benchmark harness (tools/bench) at a tiny size, so it cannot rot: two stores through the API
and through raw helm (provisioned, upgraded to a new chart version, deleted), a 50-store API section.
Checked: every store came up, moved to the new version and went away on both sides (a run where
stores fail must fail, and the bench exits non-zero then), the result files and their keys, and that
SQL queries per request do not grow with the number of stores; timings are never asserted (the
machine is shared and noisy)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_bench_runs_and_writes_results(kube_cluster, tmp_path):
    env = dict(kube_cluster.env)
    env["HELM_BIN"] = kube_cluster.helm
    env.pop("DJANGO_SETTINGS_MODULE", None)
    args = [
        sys.executable,
        "-m",
        "tools.bench",
        "--n", "2",
        "--users", "2",
        "--api-stores", "50",
        "--api-requests", "20",
        "--timeout", "400",
        "--db-name", "orchestrator_bench_smoke",
        "--redis-db-base", "13",  # 13, 14, 15: apart from development (0), the tests (1, 2) and `make bench` (10-12)
        "--out", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=840)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"
    assert "Provisioning (request → ready, seconds)" in result.stdout
    assert "Upgrade to a new chart version" in result.stdout

    [json_path] = [p for p in tmp_path.glob("bench-*-n2.json")]
    assert json_path.with_suffix(".md").is_file()
    assert (tmp_path / "bench-latest.json").is_file() and (tmp_path / "bench-latest.md").is_file()
    data = json.loads(json_path.read_text())
    assert "error" not in data, data["error"]

    assert {"n", "engines", "users", "parallelism", "worker_processes", "concurrency", "machine"} <= set(data["meta"])
    per_store = {"p50", "p95", "max"}
    for section, done in (("provisioning", "ready"), ("upgrade", "upgraded"), ("teardown", "deleted")):
        for side in ("orchestrator", "baseline"):
            figures = data[section][side]
            assert {"stores", "total_seconds", "per_store_seconds", "stores_per_minute", "failed"} <= set(figures)
            assert per_store <= set(figures["per_store_seconds"])
            outcome = (figures[done], figures["failed"], figures.get("unfinished", 0))
            assert outcome == (2, 0, 0), f"{section} ({side}): {done}/failed/unfinished {outcome}: {figures}"
    assert {"worker_slots", "max_provisioning_sampled", "exceeds_worker_slots"} <= set(data["inflight"])
    latency = data["api"]["latency"]
    assert {"p50", "p99"} <= set(latency["create"]) and {"p50", "p99"} <= set(latency["list"])
    assert {"web", "worker", "web-api"} <= set(data["footprint"])
    assert data["footprint"]["worker"]["peak_total_rss_mib"] > 0

    queries = data["api"]["queries"]
    assert queries["large"]["stores"] == 50 and queries["small"]["stores"] == 10
    assert queries["large"]["list_queries"] <= queries["small"]["list_queries"], queries
    assert queries["large"]["create_queries"] <= queries["small"]["create_queries"], queries


def test_bench_fails_when_stores_fail_or_never_finish():
    """The exit status of a run whose stores did not all finish: read from the result, not from luck."""
    from tools.bench.run import store_shortfalls

    def side(done_key, done, failed=0, unfinished=0):
        return {"stores": 2, done_key: done, "failed": failed, "unfinished": unfinished, "errors": []}

    good = {
        "provisioning": {"orchestrator": side("ready", 2), "baseline": side("ready", 2)},
        "teardown": {"orchestrator": side("deleted", 2), "baseline": side("deleted", 2)},
    }
    assert store_shortfalls(good) == []
    failed = {**good, "provisioning": {"orchestrator": side("ready", 0, failed=2), "baseline": side("ready", 2)}}
    assert store_shortfalls(failed) == ["provisioning (orchestrator): 0 of 2 ready, 2 failed, 0 unfinished. "]
    stuck = {**good, "teardown": {"orchestrator": side("deleted", 1, unfinished=1), "baseline": side("deleted", 2)}}
    assert len(store_shortfalls(stuck)) == 1
