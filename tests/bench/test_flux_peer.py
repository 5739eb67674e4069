"""The Flux peer's decisions without a cluster (tools/flux/peer.py): what a HelmRelease's conditions
mean for its store, the HelmRelease a store becomes, and the summary figures. The peer end to end
(controllers built from Go modules, stores installed on the simulated cluster) is `python -m tools.flux`,
measured by hand: building Flux costs CI minutes no test here needs."""

from __future__ import annotations

import pytest

from stores_app.models import Store
from stores_app.provisioning import chart_values
from tools.bench.benchlib import report
from tools.bench.benchlib.fleet import provisioning_figures
from tools.flux.peer import LABEL_RUN, FluxPeer, FluxStore, helmrelease_manifest, release_outcome


def helmrelease(generation=1, observed=1, **conditions):
    """A HelmRelease as the API returns it, with conditions given as Type=(status, reason)."""
    return {
        "metadata": {"name": "s", "namespace": "s", "generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": [
                {"type": kind, "status": status, "reason": reason, "message": f"{reason} message"}
                for kind, (status, reason) in conditions.items()
            ],
        },
    }


def test_ready_for_the_current_generation_only():
    assert release_outcome(helmrelease(Ready=("True", "TestSucceeded"))) == ("ready", "")
    outcome, _ = release_outcome(helmrelease(generation=2, observed=1, Ready=("True", "TestSucceeded")))
    assert outcome == "pending"


@pytest.mark.parametrize("reason", ["InstallFailed", "TestFailed"])
def test_a_failed_helm_action_fails_the_store_with_its_reason(reason):
    outcome, message = release_outcome(helmrelease(Ready=("False", reason), Released=("False", reason)))
    assert outcome == "failed"
    assert message.startswith(f"{reason}: {reason} message")


def test_stalled_fails_the_store():
    obj = helmrelease(Ready=("False", "ArtifactFailed"), Stalled=("True", "RetriesExceeded"))
    assert release_outcome(obj) == ("failed", "RetriesExceeded: ArtifactFailed message")


@pytest.mark.parametrize(
    "conditions",
    [
        {},
        {"Ready": ("Unknown", "Progressing")},
        {"Ready": ("Unknown", "AwaitingTests"), "Released": ("True", "InstallSucceeded")},
        {"Ready": ("False", "ArtifactFailed")},  # the chart not fetched yet: helm-controller tries again
    ],
)
def test_anything_else_is_still_pending(conditions):
    outcome, _ = release_outcome(helmrelease(**conditions))
    assert outcome == "pending"


def test_the_helmrelease_carries_the_baselines_chart_values_and_timeouts():
    values = {"store": {"id": "1", "host": "a.bench.test"}, "existingSecret": "s-secrets"}
    store = FluxStore(0, "woocommerce", 1, "a", "ns-a", "rel-a", values, "s-secrets")
    body = helmrelease_manifest(
        store, run_id="r1", source_namespace="flux-peer-r1", chart_version="0.2.0", helm_timeout=300, test_timeout=180
    )
    spec = body["spec"]
    assert body["metadata"] == {"name": "rel-a", "namespace": "ns-a", "labels": {LABEL_RUN: "r1"}}
    assert spec["values"] == values and spec["releaseName"] == "rel-a"
    chart = spec["chart"]
    assert chart["spec"]["chart"] == "woocommerce" and chart["spec"]["version"] == "0.2.0"
    assert chart["spec"]["sourceRef"] == {"kind": "HelmRepository", "name": "stores", "namespace": "flux-peer-r1"}
    # The HelmChart made from the template must carry the run's label: source-controller watches only those.
    assert chart["metadata"]["labels"] == {LABEL_RUN: "r1"}
    assert spec["timeout"] == "300s" and spec["test"] == {"enable": True, "timeout": "180s"}
    assert spec["install"]["remediation"]["retries"] == 0
    # helm's OpenAPI check as the orchestrator's gateway runs helm (HELM_OPENAPI_VALIDATION, off by default).
    assert spec["install"]["disableOpenAPIValidation"] is True and spec["upgrade"]["disableOpenAPIValidation"] is True
    checked = helmrelease_manifest(
        store, run_id="r1", source_namespace="s", chart_version="0.2.0", helm_timeout=1, test_timeout=1,
        openapi_validation=True,
    )  # fmt: skip
    assert checked["spec"]["install"]["disableOpenAPIValidation"] is False


def test_stores_get_the_orchestrators_values_and_names_of_their_own():
    peer = FluxPeer("/nonexistent/kubeconfig", "helm", run_id="ab12")
    stores = peer.make_stores(3, ["woocommerce", "medusa"])
    assert [s.engine for s in stores] == ["woocommerce", "medusa", "woocommerce"]
    assert len({s.namespace for s in stores}) == 3 and all("fab12-" in s.namespace for s in stores)
    first = stores[0]
    expected = Store(id=first.store_id, slug=first.slug, engine="woocommerce", release_name=first.release)
    expected.namespace = first.namespace
    assert first.values == chart_values(expected)
    assert first.secret_name == expected.secret_name


def test_figures_count_unfinished_stores_apart_from_failed_ones():
    """Flux's column means what the others do (benchlib/fleet.py), with unfinished stores counted apart."""
    peer = FluxPeer("/nonexistent/kubeconfig", "helm", run_id="cd34")
    ready, failed, unfinished = peer.make_stores(3, ["woocommerce"])
    ready.requested, ready.ready, ready.phases = 100.0, 104.0, {"helm upgrade": 2.5}
    failed.requested, failed.error = 100.0, "InstallFailed: boom"
    unfinished.requested, unfinished.error, unfinished.unfinished = 100.0, "not ready in time", True
    figures = {**provisioning_figures([ready, failed, unfinished], t0=99.0), "unfinished": 1}
    assert (figures["stores"], figures["ready"], figures["failed"], figures["unfinished"]) == (3, 1, 1, 1)
    assert figures["total_seconds"] == 5.0 and figures["per_store_seconds"]["p50"] == 4.0
    assert figures["phases_seconds"]["helm upgrade"]["max"] == 2.5
    assert len(figures["errors"]) == 2


def _figures(done_key: str, total: float, done: int = 2) -> dict:
    per_store = {"p50": total / 2, "p95": total, "max": total}
    return {"stores": 2, done_key: done, "failed": 0, "total_seconds": total, "per_store_seconds": per_store,
            "stores_per_minute": 60 * done / total, "cpu_seconds_per_store": {"python": 0.1, "helm": 0.8}}  # fmt: skip


def test_the_benchmark_prints_flux_as_a_third_column_where_it_was_measured():
    meta = {"started": "now", "n": 2, "engines": ["woocommerce"], "users": 1, "parallelism": 2, "web_workers": 1,
            "web_threads": 1, "worker_processes": 1, "concurrency": 2, "machine": "here"}  # fmt: skip
    result = {
        "meta": meta,
        "provisioning": {
            side: _figures("ready", t) for side, t in (("orchestrator", 20.0), ("baseline", 10.0), ("flux", 40.0))
        },
        "upgrade": {side: _figures("upgraded", 12.0) for side in ("orchestrator", "baseline")},
        "teardown": {side: _figures("deleted", 5.0) for side in ("orchestrator", "baseline", "flux")},
    }
    by_title = {title.split(" (")[0]: (headers, rows) for title, headers, rows in report.sections(result)}
    headers, rows = by_title["Provisioning"]
    assert headers[-2:] == ["Flux helm-controller", "ratio (orch/Flux)"]
    assert rows[0] == ("all done (wall clock)", "20.0s", "10.0s", "2.00×", "40.0s", "0.50×")
    assert len(by_title["Upgrade to a new chart version"][0]) == 4, "no Flux column where Flux was not measured"
    text = report.render_text(result)
    assert "Flux helm-controller" in text and "## Provisioning" in report.render_markdown(result)
