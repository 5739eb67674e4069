"""`helm lint --strict` of every chart under charts/ with each of its ci/*-values.yaml files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.charts import chart_dirs, ci_values_files, helm


def lint_cases():
    for chart in chart_dirs():
        for values in ci_values_files(chart):
            yield pytest.param(chart, values, id=f"{chart.name}:{values.name}")


def test_every_chart_has_ci_values():
    """A chart without ci/*-values.yaml would silently drop out of the lint below."""
    charts = chart_dirs()
    assert any(chart.name == "woocommerce" for chart in charts), charts
    missing = [chart.name for chart in charts if not ci_values_files(chart)]
    assert not missing, f"charts without ci/*-values.yaml: {missing}"


@pytest.mark.parametrize(("chart", "values"), list(lint_cases()))
def test_helm_lint_strict(chart: Path, values: Path):
    result = helm("lint", "--strict", str(chart), "--values", str(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout, result.stdout


def test_lint_catches_a_broken_template(tmp_path: Path):
    """Negative control: the lint above does fail on a chart with a broken template."""
    chart = tmp_path / "broken"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("{}\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {{ .Values.nope.deeper }}\n"
    )
    result = helm("lint", "--strict", str(chart))
    assert result.returncode != 0, result.stdout
