"""`helm lint --strict` passes with every values file we ship, and the schema rejects bad values."""

from __future__ import annotations

import pytest

from .conftest import CHART_DIR, LOCAL_VALUES, PROD_VALUES, kubernetes_version, run_helm

CI_VALUES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))


def lint(helm_bin, *values, sets=()):
    args = ["lint", "--strict", str(CHART_DIR), "--kube-version", kubernetes_version()]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return run_helm(helm_bin, *args)


def test_lint_strict_with_local_values(helm_bin):
    result = lint(helm_bin, LOCAL_VALUES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_strict_with_production_values(helm_bin):
    result = lint(helm_bin, LOCAL_VALUES, PROD_VALUES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_values_exist():
    assert len(CI_VALUES) >= 2, "ci/*-values.yaml cover the branches the two main values files do not"


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict_with_ci_values(helm_bin, values):
    result = lint(helm_bin, values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (["ingress.host=Not A Host"], "/ingress/host"),
        (["web.autoscaling.targetCPUUtilizationPercentage=170"], "targetCPUUtilizationPercentage"),
        (["image.pullPolicy=Sometimes"], "pullPolicy"),
        (["webb.replicas=2"], "webb"),  # a typo is an error, not silently ignored
    ],
)
def test_schema_rejects_bad_values(helm_bin, sets, complaint):
    result = lint(helm_bin, LOCAL_VALUES, sets=sets)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (["postgres.enabled=false"], "needs externalDatabase.host"),
        (["postgres.enabled=false", "externalDatabase.host=db"], "needs externalDatabase.existingSecret"),
        (["redis.enabled=false"], "needs externalRedis.host"),
        (["ingress.tls.enabled=true"], "needs ingress.tls.clusterIssuer"),
    ],
)
def test_contradictory_values_fail_rendering(helm_bin, sets, complaint):
    # helm lint reports a template's `fail` only as INFO, so this is checked by rendering.
    args = ["template", "so", str(CHART_DIR), "--kube-version", kubernetes_version()]
    for item in sets:
        args += ["--set", item]
    result = run_helm(helm_bin, *args)
    assert result.returncode != 0
    assert complaint in result.stderr
