"""Both store charts place every pod they make by the same top-level ``nodeSelector`` and
``tolerations``: the server or WordPress, the databases, Redis, the setup and background Jobs and the
helm test pod. A store whose pods must run on one particular node (a tainted real node beside the
simulated ones, a dedicated node pool) needs all of them there, not just the workloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.charts import chart_dirs, store_chart

CHARTS = chart_dirs()


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.name)
def test_every_pod_gets_the_node_selector_and_tolerations(chart: Path):
    values = chart / "ci" / "scheduling-values.yaml"
    wanted = yaml.safe_load(values.read_text())
    specs = store_chart.every_pod_spec(store_chart.render(chart, values))
    kinds = {where.split("/")[0] for where in specs}
    assert {"Pod", "Job"} <= kinds and kinds & {"Deployment", "StatefulSet"}, sorted(specs)
    for where, spec in specs.items():
        assert spec.get("nodeSelector") == wanted["nodeSelector"], where
        assert spec.get("tolerations") == wanted["tolerations"], where


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.name)
def test_by_default_no_pod_is_tied_to_a_node(chart: Path):
    specs = store_chart.every_pod_spec(store_chart.render(chart, chart / "ci" / "default-values.yaml"))
    assert specs
    for where, spec in specs.items():
        assert "nodeSelector" not in spec and "tolerations" not in spec, where
