"""The benchmark harness (tools/bench) at a tiny size, so it cannot rot: two stores through the API
and through raw helm (provisioned, upgraded to a new chart version, deleted), a 50-store API section;
the live-store figures are taken once the orchestrator's first store is ready, as a fleet run does at 100.
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
        "--checkpoint", "1",
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

    # Fleet figures: when the stores finished, the control plane's cost, the live-store checkpoints, the plot.
    for section in ("provisioning", "teardown"):
        for side in ("orchestrator", "baseline"):
            figures = data[section][side]
            assert sum(figures["per_minute"]) == 2 and len(figures["done_seconds"]) == 2, figures
            plane = figures["control_plane"]
            assert plane["components"]["kube-apiserver"]["peak_rss_mib"] > 0, plane
            assert plane["etcd_size_mib"] > 0, plane
    live = data["live"]
    assert live["checkpoint"]["ready_stores"] >= 1 and live["checkpoint"]["live_stores"] == 2, live
    assert (live["all"]["ready_stores"], live["all"]["live_stores"]) == (2, 2), live
    for point in live.values():
        assert point["reconcile_pass_ms"]["median"] > 0
        assert point["api_list_ms"]["count"] == point["api_detail_ms"]["count"] == 40
        assert point["dashboard_list_ms"]["count"] >= 5
    assert "With the stores live (orchestrator)" in result.stdout
    assert json_path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

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


def test_timeline_counts_each_minute_from_the_start():
    from tools.bench.benchlib.fleet import timeline

    t0 = 1000.0
    figures = timeline([t0 + 70, t0 + 5, t0 + 59.9, t0 + 185], t0)
    assert figures["per_minute"] == [2, 1, 0, 1]
    assert figures["done_seconds"] == [5.0, 59.9, 70.0, 185.0]
    assert timeline([], t0) == {"per_minute": [], "done_seconds": []}


def test_control_plane_metrics_give_etcds_size_and_objects():
    from tools.bench.benchlib.control_plane import parse_metrics

    text = "\n".join(
        [
            "# HELP apiserver_storage_size_bytes Size of the storage database file",
            'apiserver_storage_size_bytes{storage_cluster_id="etcd-0"} 3.145728e+06',
            'apiserver_resource_objects{group="",resource="pods"} 40',
            'apiserver_resource_objects{group="",resource="namespaces"} 12',
            'apiserver_resource_objects{group="apps",resource="deployments"} 20',
            "process_cpu_seconds_total 3.9",
        ]
    )
    assert parse_metrics(text) == {"etcd_size_mib": 3.0, "objects": 72, "pods": 40, "namespaces": 12}
