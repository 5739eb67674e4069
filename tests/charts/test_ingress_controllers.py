"""Stores behind either ingress controller the production docs name: ingress-nginx
(values-prod.yaml as it is) and k3s' bundled Traefik (values-prod.yaml + values-traefik.yaml, what
``deploy-prod.sh INGRESS=traefik`` installs). Rendered along the path production takes: the
orchestrator chart turns its values into STORE_INGRESS_* variables, the orchestrator's settings
parse them, ``chart_values`` passes them to every store, and each store chart's Ingress uses the
class while its NetworkPolicies admit that controller's pods and nothing else from outside."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stores_app.models import Store
from stores_app.provisioning import chart_values
from tests.charts import CHARTS_DIR, REPO_ROOT, helm, store_chart

ORCHESTRATOR_CHART = REPO_ROOT / "deploy" / "helm" / "store-orchestrator"
PROD = ORCHESTRATOR_CHART / "values-prod.yaml"
TRAEFIK = ORCHESTRATOR_CHART / "values-traefik.yaml"
# Production (values-prod.yaml and deploy-prod.sh) documents exactly these two.
CONTROLLERS = {
    "ingress-nginx": ([PROD], "nginx", ["ingress-nginx"], {}),
    "traefik": ([PROD, TRAEFIK], "traefik", ["kube-system"], {"app.kubernetes.io/name": "traefik"}),
}
ENGINES = {"woocommerce": "wordpress", "medusa": "server"}  # engine -> the pod the controller reaches


def kubernetes_version() -> str:
    """The simulated cluster's version: the orchestrator chart needs >= 1.30 (its admission policy)."""
    env = (REPO_ROOT / "tools" / "simcluster" / "versions.env").read_text()
    return next(line.split("=", 1)[1] for line in env.splitlines() if line.startswith("KUBERNETES_VERSION="))


def orchestrator_env(values: list[Path]) -> dict[str, str]:
    """The environment the orchestrator chart gives the worker (which provisions stores)."""
    args = ["template", "so", str(ORCHESTRATOR_CHART), "--kube-version", kubernetes_version()]
    for path in values:
        args += ["--values", str(path)]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    (worker,) = [doc for doc in yaml.safe_load_all(result.stdout)
                 if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith("-worker")]  # fmt: skip
    return {item["name"]: item.get("value") for item in worker["spec"]["template"]["spec"]["containers"][0]["env"]}


def render_store(engine: str, values: dict, tmp_path: Path) -> list[dict]:
    path = tmp_path / f"{engine}-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return store_chart.render(CHARTS_DIR / engine, path)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("controller", CONTROLLERS)
def test_stores_are_served_by_the_configured_controller_only(controller, engine, monkeypatch, settings, tmp_path):
    from orchestrator import settings as orchestrator_settings

    values_files, ingress_class, namespaces, pod_labels = CONTROLLERS[controller]
    env = orchestrator_env(values_files)
    assert env["STORE_INGRESS_CLASS"] == ingress_class
    # The orchestrator reads the variables as it does at startup.
    for name in ("STORE_INGRESS_NAMESPACES", "STORE_INGRESS_POD_LABELS"):
        monkeypatch.setenv(name, env[name])
    settings.STORE_INGRESS_CLASS = env["STORE_INGRESS_CLASS"]
    settings.STORE_INGRESS_NAMESPACES = orchestrator_settings.env_list("STORE_INGRESS_NAMESPACES")
    settings.STORE_INGRESS_POD_LABELS = orchestrator_settings.env_labels("STORE_INGRESS_POD_LABELS")
    assert (settings.STORE_INGRESS_NAMESPACES, settings.STORE_INGRESS_POD_LABELS) == (namespaces, pod_labels)
    settings.STORE_EXTRA_VALUES = {}

    store = Store(pk=7, name="Shop", slug="shop", engine=engine, namespace="store-7-shop", release_name="store-7-shop")
    values = chart_values(store)
    objects = render_store(engine, values, tmp_path)

    (ingress,) = [obj for obj in objects if obj["kind"] == "Ingress"]
    assert ingress["spec"]["ingressClassName"] == ingress_class
    merged = store_chart.merge(yaml.safe_load((CHARTS_DIR / engine / "values.yaml").read_text()), values)
    names = store_chart.peer_names(merged)
    controller_peer = names["controller"]
    assert controller_peer["namespaceSelector"]["matchExpressions"][0]["values"] == namespaces
    assert controller_peer.get("podSelector", {}).get("matchLabels", {}) == pod_labels
    for component, (labels, _) in store_chart.every_pod(objects).items():
        reached_from = store_chart.reachable(objects, labels, "ingress", names)
        outside = {peer for peer in reached_from if peer != "namespace"}
        assert outside == ({"controller:http"} if component == ENGINES[engine] else set()), component
    # A controller pod is let in; another pod of its namespace only when no pod labels narrow it.
    web_labels = store_chart.every_pod(objects)[ENGINES[engine]][0]
    policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy" and obj["spec"].get("ingress")]
    assert admits(policies, web_labels, {"kubernetes.io/metadata.name": namespaces[0]}, pod_labels)
    assert admits(policies, web_labels, {"kubernetes.io/metadata.name": namespaces[0]}, {"app": "other"}) is (
        not pod_labels
    )
    assert not admits(policies, web_labels, {"kubernetes.io/metadata.name": "default"}, pod_labels)


def admits(policies: list[dict], target: dict, namespace: dict, pod: dict) -> bool:
    """Whether a pod with labels ``pod`` in a namespace with labels ``namespace`` (another namespace
    than the store's) may connect to a pod with labels ``target``."""
    for policy in policies:
        if not store_chart.selects(policy["spec"]["podSelector"], target):
            continue
        for rule in policy["spec"]["ingress"]:
            for peer in rule.get("from", []):
                if "namespaceSelector" not in peer:
                    continue  # same-namespace peers
                if store_chart.selects(peer["namespaceSelector"], namespace) and store_chart.selects(
                    peer.get("podSelector", {}), pod
                ):
                    return True
    return False


DEPLOY_PROD = REPO_ROOT / "deploy" / "deploy-prod.sh"


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("ingress", "complaint"),
    [
        ("traefik", "IngressClass traefik not found: k3s installs it"),
        ("nginx", "IngressClass nginx not found"),
        ("haproxy", "INGRESS=haproxy is not nginx or traefik"),
    ],
)
def test_deploy_prod_checks_the_chosen_controller_first(kube_cluster, ingress, complaint):
    """deploy-prod.sh refuses before installing anything, naming what the chosen controller lacks
    (the simulated cluster has the nginx IngressClass and no traefik one)."""
    import subprocess

    env = {**kube_cluster.env, "INGRESS": ingress, "NAMESPACE": "absent-for-ingress-check"}
    result = subprocess.run([str(DEPLOY_PROD)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (complaint in result.stderr) is (ingress != "nginx"), result.stderr
