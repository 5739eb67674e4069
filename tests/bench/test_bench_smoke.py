"""The benchmark harness (deploy/bench) at a tiny size, so it cannot rot: two stores through the API
and through raw helm, a 50-store API section. Only completion, the result files and their keys are
checked, plus that SQL queries per request do not grow with the number of stores; timings are never
asserted (the machine is shared and noisy)."""

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
        str(REPO / "deploy" / "bench" / "bench.py"),
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

    [json_path] = [p for p in tmp_path.glob("bench-*-n2.json")]
    assert json_path.with_suffix(".md").is_file()
    assert (tmp_path / "bench-latest.json").is_file() and (tmp_path / "bench-latest.md").is_file()
    data = json.loads(json_path.read_text())
    assert "error" not in data, data["error"]

    assert {"n", "engines", "users", "parallelism", "worker_processes", "concurrency", "machine"} <= set(data["meta"])
    per_store = {"p50", "p95", "max"}
    for section in ("provisioning", "teardown"):
        for side in ("orchestrator", "baseline"):
            figures = data[section][side]
            assert {"stores", "total_seconds", "per_store_seconds", "stores_per_minute", "failed"} <= set(figures)
            assert per_store <= set(figures["per_store_seconds"])
    assert {"worker_slots", "max_provisioning_sampled", "exceeds_worker_slots"} <= set(data["inflight"])
    latency = data["api"]["latency"]
    assert {"p50", "p99"} <= set(latency["create"]) and {"p50", "p99"} <= set(latency["list"])
    assert {"web", "worker", "web-api"} <= set(data["footprint"])
    assert data["footprint"]["worker"]["peak_total_rss_mib"] > 0

    queries = data["api"]["queries"]
    assert queries["large"]["stores"] == 50 and queries["small"]["stores"] == 10
    assert queries["large"]["list_queries"] <= queries["small"]["list_queries"], queries
    assert queries["large"]["create_queries"] <= queries["small"]["create_queries"], queries
