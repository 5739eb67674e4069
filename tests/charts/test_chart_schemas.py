"""The charts' values.schema.json turn bad values away before anything reaches a cluster:
wrong types, unknown keys, a missing or empty existingSecret. Checked through both `helm
template` and `helm lint`, against each chart's first ci values file as the known-good base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.charts import chart_dirs, ci_values_files, helm

# Cases every store chart must reject: they break docs/CONVENTIONS.md's shared values.
COMMON_BAD_VALUES = {
    "store-id-not-a-string": {"store": {"id": 42}},
    "store-id-empty": {"store": {"id": ""}},
    "store-host-missing": {"store": {"host": None}},
    "store-host-not-a-host-name": {"store": {"host": "https://shop.example.com/"}},
    "existing-secret-missing": {"existingSecret": None},
    "existing-secret-empty": {"existingSecret": ""},
    "existing-secret-not-a-string": {"existingSecret": ["a", "b"]},
    "unknown-top-level-key": {"replicaCount": 2},
    "tls-enabled-not-a-boolean": {"ingress": {"tls": {"enabled": "yes"}}},
    "unknown-tls-key": {"ingress": {"tls": {"enable": True}}},
    "ingress-class-not-a-string": {"ingress": {"className": 7}},
    "node-selector-value-not-a-string": {"nodeSelector": {"zone": 1}},
    "toleration-operator-unknown": {"tolerations": [{"key": "dedicated", "operator": "Sometimes"}]},
}

# Cases specific to one chart's own values.
CHART_BAD_VALUES = {
    "woocommerce": {
        "stock-quantity-not-an-integer": {"woocommerce": {"sampleProduct": {"stockQuantity": "many"}}},
        "price-not-a-string": {"woocommerce": {"sampleProduct": {"regularPrice": 19.99}}},
        "woocommerce-version-unpinned": {"woocommerce": {"version": "latest"}},
        "image-tag-latest": {"wordpress": {"image": {"tag": "latest"}}},
        "unknown-wordpress-key": {"wordpress": {"replicas": 3}},
        "quota-not-a-quantity": {"resourceQuota": {"hard": {"requests.cpu": "a lot"}}},
        "unknown-quota-resource": {"resourceQuota": {"hard": {"request.cpu": "1"}}},
        "quota-switch-not-a-boolean": {"resourceQuota": {"enabled": "true"}},
        "resources-without-limits": {"mariadb": {"resources": {"limits": None}}},
        "privileged-port": {"wordpress": {"containerPort": 80}},
        "egress-cidr-not-a-cidr": {"networkPolicy": {"setupEgress": {"cidr": "everything"}}},
        "network-policy-switch-not-a-boolean": {"networkPolicy": {"enabled": 1}},
        "unknown-network-policy-key": {"networkPolicy": {"allowEverything": True}},
    },
}

COMMANDS = ("template", "lint")
SCHEMA_TEMPLATE_ERROR = "values don't meet the specifications of the schema"
SCHEMA_LINT_ERROR = "[ERROR] values.yaml:"


def deepest_key(override: dict) -> str:
    """The key the override is about: the last key on its (single) path."""
    key, value = next(iter(override.items()))
    return deepest_key(value) if isinstance(value, dict) and value else key


def base_values(chart: Path) -> Path:
    files = ci_values_files(chart)
    assert files, f"{chart.name} has no ci/*-values.yaml to start from"
    return files[0]


def render(command: str, chart: Path, *values_files: Path):
    args = [command, "schema-check", str(chart)] if command == "template" else [command, "--strict", str(chart)]
    for values in values_files:
        args += ["--values", str(values)]
    return helm(*args)


def bad_cases():
    for chart in chart_dirs():
        cases = {**COMMON_BAD_VALUES, **CHART_BAD_VALUES.get(chart.name, {})}
        for name, override in cases.items():
            for command in COMMANDS:
                yield pytest.param(chart, override, command, id=f"{chart.name}:{name}:{command}")


def test_bad_cases_cover_the_woocommerce_chart():
    """The chart-specific cases name real charts, so a rename cannot silently drop them."""
    assert set(CHART_BAD_VALUES) <= {chart.name for chart in chart_dirs()}


@pytest.mark.parametrize("chart", chart_dirs(), ids=lambda chart: chart.name)
def test_every_chart_has_a_strict_schema(chart: Path):
    schema_file = chart / "values.schema.json"
    assert schema_file.is_file(), f"{chart.name} has no values.schema.json"
    schema = json.loads(schema_file.read_text())
    assert schema.get("additionalProperties") is False, "unknown top-level keys must be refused"
    assert "existingSecret" in schema.get("required", []), "existingSecret must be required"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("chart", chart_dirs(), ids=lambda chart: chart.name)
def test_known_good_values_pass(chart: Path, command: str):
    """Positive control: the base values are accepted, so each rejection below is the override's doing."""
    result = render(command, chart, base_values(chart))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("chart", "override", "command"), list(bad_cases()))
def test_schema_rejects(chart: Path, override: dict, command: str, tmp_path: Path):
    bad = tmp_path / "bad-values.yaml"
    bad.write_text(yaml.safe_dump(override))
    result = render(command, chart, base_values(chart), bad)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"accepted {override}:\n{output}"
    # Refused by the schema, for the overridden key (not by some unrelated template error).
    assert SCHEMA_TEMPLATE_ERROR in output or SCHEMA_LINT_ERROR in output, output
    assert f"{deepest_key(override)}" in output, output
