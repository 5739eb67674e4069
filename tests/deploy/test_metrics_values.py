"""/metrics is protected by a token from a Secret: the chart gives it to web (the one process that serves
/metrics) and, when asked, to a prometheus-operator ServiceMonitor; locally the token is generated and
kept, in production it comes from the operator's Secret like every other credential."""

from __future__ import annotations

from .conftest import LOCAL_VALUES, PROD_VALUES, env_of, named, of_kind, pod_specs


def _web_env(objects) -> dict:
    return env_of(named(objects, "Deployment", "-web")["spec"]["template"]["spec"]["containers"][0])


def test_web_gets_the_generated_token_locally(local_objects):
    token = _web_env(local_objects)["METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "so-store-orchestrator-generated", "key": "metrics-token"}
    generated = named(local_objects, "Secret", "-generated")
    assert "metrics-token" in generated["data"]
    assert generated["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # stable across upgrades
    assert _web_env(local_objects)["METRICS_CACHE_SECONDS"]["value"] == "10"


def test_only_web_gets_the_token(local_objects):
    for where, spec in pod_specs(local_objects).items():
        if not where.endswith("-web"):
            for container in spec["containers"]:
                assert "METRICS_TOKEN" not in env_of(container), where


def test_production_reads_it_from_the_operators_secret(prod_objects):
    token = _web_env(prod_objects)["METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "store-orchestrator-secrets", "key": "metrics-token"}
    assert of_kind(prod_objects, "Secret") == []


def test_no_service_monitor_unless_asked(local_objects):
    assert of_kind(local_objects, "ServiceMonitor") == []


def test_service_monitor_scrapes_web_with_the_token(render):
    objects = render(
        LOCAL_VALUES,
        PROD_VALUES,
        sets=["metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=kps"],
    )
    [monitor] = of_kind(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    service = named(objects, "Service", "-web")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "store-orchestrator-secrets", "key": "metrics-token"},
    }
