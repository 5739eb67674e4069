"""The Medusa store chart (charts/medusa).

* Rendered templates, no cluster: store labels on every object, Pod Security "restricted" on every
  pod, every pod at once within the quota, the setup Job's shape, credentials only through
  existingSecret, the helm test carrying the very order script the native test runs, TLS, network
  policies, and Medusa-specific schema rejections.
* On the cluster (marker ``cluster``, fixture ``kube_cluster``): install with ``--wait
  --wait-for-jobs`` into a namespace enforcing Pod Security "restricted" -> deployed; guard rails
  present; the requests and limits of every pod (helm test pod included) fit the quota; labels on
  every object; ``helm uninstall`` + namespace deletion leave no PVC, PV or Secret within 60 s.
  The simulated cluster runs no containers, so there ``helm test`` only shows the order pod is
  admitted and scheduled; the order itself is proven by tests/charts/test_medusa_native.py.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from kubernetes.utils import parse_quantity

from tests.charts import CHARTS_DIR, REPO_ROOT, helm

CHART = CHARTS_DIR / "medusa"
DEFAULT_VALUES = CHART / "ci" / "default-values.yaml"
TLS_VALUES = CHART / "ci" / "tls-values.yaml"
ORDER_SCRIPT = CHART / "files" / "place-order.mjs"
IMAGE_PROJECT = REPO_ROOT / "deploy" / "images" / "medusa"
# docs/CONVENTIONS.md: the keys the orchestrator writes into existingSecret for Medusa.
SECRET_KEYS = ("admin-password", "db-password", "redis-password", "jwt-secret", "cookie-secret")
STORE_LABELS = ("store-orchestrator.io/store-id", "store-orchestrator.io/engine")
STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
BUDGET = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
POD_COMPONENTS = {"server", "postgres", "redis", "setup", "test"}


# --- helpers -----------------------------------------------------------------------------------


def render(*values: Path, extra: tuple[str, ...] = ()) -> list[dict]:
    """The chart's objects, hooks (the helm test pod) included."""
    args = ["template", "shop", str(CHART), "--namespace", "shop"]
    for path in values:
        args += ["--values", str(path)]
    result = helm(*args, *extra)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pods_of(objects: list[dict]) -> dict[str, dict]:
    """Pod specs by component: workload templates and bare pods."""
    pods = {}
    for obj in objects:
        if obj["kind"] == "Pod":
            spec, labels = obj["spec"], obj["metadata"]["labels"]
        elif obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            spec, labels = obj["spec"]["template"]["spec"], obj["spec"]["template"]["metadata"]["labels"]
        else:
            continue
        pods[labels["app.kubernetes.io/component"]] = spec
    return pods


def container_amount(container: dict, key: str) -> Decimal:
    """A container's request or limit for a quota key such as "limits.memory"."""
    kind, resource = key.split(".")
    value = container.get("resources", {}).get(kind, {}).get(resource)
    assert value is not None, f"{container['name']} states no {key}"
    return parse_quantity(value)


def pod_usage(spec: dict) -> dict[str, Decimal]:
    """What a pod counts against a quota: per resource, the larger of its containers' sum and its
    largest init container (Kubernetes' rule)."""
    usage = {}
    for key in BUDGET:
        containers = sum((container_amount(c, key) for c in spec["containers"]), Decimal(0))
        inits = max((container_amount(c, key) for c in spec.get("initContainers") or []), default=Decimal(0))
        usage[key] = max(containers, inits)
    return usage


def sum_usage(pods: list[dict]) -> dict[str, Decimal]:
    usages = [pod_usage(spec) for spec in pods]
    return {key: sum((u[key] for u in usages), Decimal(0)) for key in BUDGET}


def check_restricted(where: str, spec: dict) -> None:
    """Pod Security "restricted", plus the project's read-only root and no service account token."""
    pod_sc = spec.get("securityContext") or {}
    assert spec.get("automountServiceAccountToken") is False, where
    assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC")), where
    assert all("hostPath" not in volume for volume in spec.get("volumes", [])), where
    for container in spec["containers"] + (spec.get("initContainers") or []):
        sc = container.get("securityContext") or {}
        at = f"{where}/{container['name']}"
        assert sc.get("allowPrivilegeEscalation") is False, at
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], at
        assert not sc.get("capabilities", {}).get("add"), at
        assert sc.get("readOnlyRootFilesystem") is True, at
        assert sc.get("privileged") in (None, False), at
        assert (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")) is True, at
        assert (sc.get("runAsUser") or pod_sc.get("runAsUser") or 0) > 0, at
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        assert seccomp == "RuntimeDefault", at
        assert all(port["containerPort"] >= 1024 for port in container.get("ports", [])), at


def check_store_labels(obj: dict, store_id: str) -> None:
    labels = obj["metadata"].get("labels") or {}
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    assert labels.get("store-orchestrator.io/store-id") == store_id, where
    assert labels.get("store-orchestrator.io/engine") == "medusa", where
    for label in STANDARD_LABELS:
        assert label in labels, f"{where} lacks {label}"


# --- rendered templates --------------------------------------------------------------------------


@pytest.mark.parametrize("values", [DEFAULT_VALUES, TLS_VALUES], ids=["default", "tls"])
def test_every_object_and_pod_template_carries_the_store_labels(values: Path):
    store_id = yaml.safe_load(values.read_text())["store"]["id"]
    for obj in render(values):
        check_store_labels(obj, store_id)
        assert "app.kubernetes.io/managed-by" in obj["metadata"]["labels"]
        assert "app.kubernetes.io/version" in obj["metadata"]["labels"]
        spec = obj.get("spec") or {}
        if "template" in spec:
            check_store_labels({**spec["template"], "kind": obj["kind"], "metadata": {
                "name": obj["metadata"]["name"], **spec["template"]["metadata"]}}, store_id)  # fmt: skip
        for claim in spec.get("volumeClaimTemplates", []):
            check_store_labels({**claim, "kind": "PersistentVolumeClaim"}, store_id)


@pytest.mark.parametrize("values", [DEFAULT_VALUES, TLS_VALUES], ids=["default", "tls"])
def test_every_pod_is_restricted(values: Path):
    pods = pods_of(render(values))
    assert set(pods) == POD_COMPONENTS, sorted(pods)
    for component, spec in pods.items():
        check_restricted(component, spec)
        assert spec["securityContext"]["runAsUser"] > 0


def test_every_pod_at_once_fits_the_default_quota():
    objects = render(DEFAULT_VALUES)
    (quota,) = [obj for obj in objects if obj["kind"] == "ResourceQuota"]
    hard = quota["spec"]["hard"]
    used = sum_usage(list(pods_of(objects).values()))
    for key in BUDGET:
        assert used[key] <= parse_quantity(hard[key]), (key, used[key], hard[key])
    claims = [obj for obj in objects if obj["kind"] == "PersistentVolumeClaim"]
    claims += [claim for obj in objects for claim in obj.get("spec", {}).get("volumeClaimTemplates", [])]
    storage = sum(parse_quantity(claim["spec"]["resources"]["requests"]["storage"]) for claim in claims)
    assert len(claims) == 2  # database and media
    assert len(claims) <= int(hard["persistentvolumeclaims"])
    assert storage <= parse_quantity(hard["requests.storage"])
    # Storage and PVC count keep to the reference budget; CPU/memory departures are documented.
    assert parse_quantity(hard["requests.storage"]) == parse_quantity("10Gi")
    assert int(hard["persistentvolumeclaims"]) == 5


def test_every_container_fits_the_limit_range():
    objects = render(DEFAULT_VALUES)
    (limit_range,) = [obj for obj in objects if obj["kind"] == "LimitRange"]
    (container_limits,) = [item for item in limit_range["spec"]["limits"] if item["type"] == "Container"]
    for component, spec in pods_of(objects).items():
        for container in spec["containers"] + (spec.get("initContainers") or []):
            for resource, ceiling in container_limits["max"].items():
                limit = container["resources"]["limits"][resource]
                assert parse_quantity(limit) <= parse_quantity(ceiling), (component, resource, limit)


def test_setup_is_a_plain_job_named_per_revision():
    objects = render(DEFAULT_VALUES)
    (job,) = [obj for obj in objects if obj["kind"] == "Job"]
    assert job["metadata"]["name"] == "shop-medusa-setup-1"  # helm template renders revision 1
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "setup"
    assert not any(key.startswith("helm.sh/hook") for key in job["metadata"].get("annotations") or {})
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "/app/setup-store.sh"]
    env = {item["name"]: item for item in container["env"]}
    assert env["ADMIN_EMAIL"]["value"] == "admin@myshop.stores.local.dev"
    assert env["ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "myshop-credentials", "key": "admin-password"}
    # The server waits for the same script's marker instead of crash-looping on an empty database.
    server = pods_of(objects)["server"]
    assert server["initContainers"][0]["command"] == ["sh", "/app/setup-store.sh", "--wait"]


def test_credentials_come_only_from_the_existing_secret():
    objects = render(DEFAULT_VALUES)
    assert not [obj for obj in objects if obj["kind"] == "Secret"], "the chart must not create Secrets"
    used_keys = set()
    for component, spec in pods_of(objects).items():
        for container in spec["containers"] + (spec.get("initContainers") or []):
            for item in container.get("env", []):
                ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "myshop-credentials", (component, item)
                    used_keys.add(ref["key"])
                elif re.search(r"PASSWORD|SECRET|TOKEN", item["name"]):
                    pytest.fail(f"{component}: {item['name']} is not read from the Secret")
                elif item["name"] in ("DATABASE_URL", "REDIS_URL"):
                    # Composed by the kubelet; the password itself never is in the manifest.
                    assert re.search(r":\$\((DB|REDIS)_PASSWORD\)@", item["value"]), item
    assert used_keys == set(SECRET_KEYS)


def test_helm_test_runs_the_same_order_script_as_the_native_test():
    objects = render(DEFAULT_VALUES)
    (config_map,) = [obj for obj in objects if obj["kind"] == "ConfigMap"]
    assert config_map["data"]["place-order.mjs"].strip() == ORDER_SCRIPT.read_text().strip()
    (pod,) = [obj for obj in objects if obj["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["node", "/scripts/place-order.mjs"]
    assert container["image"] == "store-orchestrator/medusa:2.21.2"
    env = {item["name"]: item for item in container["env"]}
    assert env["MEDUSA_URL"]["value"] == "http://shop-medusa-server:9000"


def test_tls_switches_urls_and_asks_cert_manager():
    objects = render(TLS_VALUES)
    (ingress,) = [obj for obj in objects if obj["kind"] == "Ingress"]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert ingress["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-medusa-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    server = pods_of(objects)["server"]["containers"][0]
    env = {item["name"]: item.get("value") for item in server["env"]}
    assert env["MEDUSA_BACKEND_URL"] == "https://shop.example.com"
    assert env["STORE_CORS"] == "https://shop.example.com,https://www.example.com"
    plain = render(DEFAULT_VALUES)
    (plain_ingress,) = [obj for obj in plain if obj["kind"] == "Ingress"]
    assert "tls" not in plain_ingress["spec"]
    assert "cert-manager.io/cluster-issuer" not in (plain_ingress["metadata"].get("annotations") or {})


@pytest.mark.parametrize(("values", "scheme"), [(DEFAULT_VALUES, "http"), (TLS_VALUES, "https")], ids=["http", "https"])
def test_notes_print_store_and_admin_urls(values: Path, scheme: str, tmp_path: Path):
    """Helm renders NOTES.txt only on install/upgrade (which need a cluster), so a copy of the
    chart passes it through `tpl` into a ConfigMap that `helm template` can show."""
    chart = tmp_path / "medusa"
    shutil.copytree(CHART, chart)
    (chart / "notes.txt").write_text((CHART / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data: {notes: {{ tpl (.Files.Get "notes.txt") . | quote }}}\n'
    )
    result = helm("template", "shop", str(chart), "--values", str(values), "--show-only", "templates/zz-notes.yaml")
    assert result.returncode == 0, result.stderr
    notes = yaml.safe_load(result.stdout)["data"]["notes"]
    host = yaml.safe_load(values.read_text())["store"]["host"]
    assert f"Store URL:   {scheme}://{host}/store" in notes, notes
    assert f"Admin URL:   {scheme}://{host}/admin" in notes, notes


def test_network_policies_deny_by_default_and_open_only_what_the_store_needs():
    policies = {
        obj["metadata"]["name"]: obj["spec"] for obj in render(DEFAULT_VALUES) if obj["kind"] == "NetworkPolicy"
    }
    deny = policies.pop("shop-medusa-default-deny")
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for name, spec in policies.items():
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                if "namespaceSelector" in peer:  # only the ingress controller, only to the server
                    assert name == "shop-medusa-ingress-controller", name
                    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
                    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
                else:
                    assert peer == {"podSelector": {}}, (name, peer)
        for rule in spec.get("egress", []):
            for peer in rule["to"]:
                assert "ipBlock" not in peer, f"{name}: no egress out of the cluster by default"
                if "namespaceSelector" in peer:  # only the cluster DNS
                    assert name == "shop-medusa-dns", name
                    assert {port["port"] for port in rule["ports"]} == {53}
    assert set(policies) == {"shop-medusa-same-namespace", "shop-medusa-dns", "shop-medusa-ingress-controller"}


def test_guard_rails_can_be_switched_off():
    objects = render(CHART / "ci" / "guardrails-off-values.yaml")
    kinds = {obj["kind"] for obj in objects}
    assert not kinds & {"ResourceQuota", "LimitRange", "NetworkPolicy"}, kinds
    (pod,) = [obj for obj in objects if obj["kind"] == "Pod"]
    assert pod["spec"]["containers"][0]["image"] == "docker.io/library/node:20.20.2-alpine"


MEDUSA_BAD_VALUES = {
    "storefront-on": {"storefront": {"enabled": True}},
    "currency-not-iso": {"store": {"currency": "EURO"}},
    "country-not-iso": {"store": {"country": "Germany"}},
    "server-image-latest": {"medusa": {"image": {"tag": "latest"}}},
    "unknown-medusa-key": {"medusa": {"replicas": 2}},
    "root-uid": {"medusa": {"uid": 0}},
    "privileged-port": {"medusa": {"containerPort": 80}},
    "redis-memory-not-a-size": {"redis": {"maxMemory": 96}},
    "quota-resource-misspelt": {"resourceQuota": {"hard": {"request.cpu": "1"}}},
    "postgres-size-not-a-quantity": {"postgres": {"persistence": {"size": "big"}}},
    "setup-retries-not-an-integer": {"setup": {"backoffLimit": "four"}},
}


@pytest.mark.parametrize("override", MEDUSA_BAD_VALUES.values(), ids=MEDUSA_BAD_VALUES.keys())
def test_schema_rejects_bad_medusa_values(override: dict, tmp_path: Path):
    bad = tmp_path / "bad-values.yaml"
    bad.write_text(yaml.safe_dump(override))
    result = helm("template", "shop", str(CHART), "--values", str(DEFAULT_VALUES), "--values", str(bad))
    assert result.returncode != 0, f"accepted {override}"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


def test_chart_image_and_app_version_match_the_server_project():
    """The default image tag names the Medusa version the image's package.json pins."""
    package = json.loads((IMAGE_PROJECT / "package.json").read_text())
    medusa_version = package["dependencies"]["@medusajs/medusa"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", medusa_version), "Medusa must be pinned exactly"
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in package["dependencies"].values()), package
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["appVersion"] == medusa_version
    assert values["medusa"]["image"]["tag"] == medusa_version
    dockerfile = (IMAGE_PROJECT / "Dockerfile").read_text()
    assert re.search(r"^ARG NODE_IMAGE=node:20\.\d+\.\d+-", dockerfile, re.M), "node:20 pinned"
    assert re.search(r"^USER 1000:1000$", dockerfile, re.M)
    assert values["medusa"]["uid"] == 1000


# --- on the cluster ---------------------------------------------------------------------------------


class InstalledStore:
    """One Medusa store installed the way the orchestrator installs it."""

    def __init__(self, cluster, api_client):
        suffix = secrets.token_hex(3)
        self.cluster = cluster
        self.api_client = api_client
        self.store_id = f"m{suffix}"
        self.namespace = f"store-medusa-{suffix}"
        self.release = f"store-{suffix}"
        self.fullname = f"{self.release}-medusa"
        self.secret = f"store-{suffix}-credentials"
        self.host = f"medusa-{suffix}.stores.local.dev"
        self.volumes: set[str] = set()

    def helm(self, *args: str, timeout: float = 420, check: bool = True):
        return self.cluster.run(self.cluster.helm, *args, "--namespace", self.namespace, timeout=timeout, check=check)

    def get(self, *args: str) -> list[dict]:
        result = self.cluster.run(self.cluster.kubectl, "get", *args, "--namespace", self.namespace, "-o", "json")
        return json.loads(result.stdout)["items"]

    def create_namespace_and_secret(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api_client)
        labels = {
            "app.kubernetes.io/managed-by": "store-orchestrator",
            "store-orchestrator.io/store-id": self.store_id,
            "store-orchestrator.io/owner-id": "1",
            "store-orchestrator.io/engine": "medusa",
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace, labels=labels)))
        store_labels = {k: v for k, v in labels.items() if k.startswith("store-orchestrator.io/")}
        core.create_namespaced_secret(
            self.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=self.secret, labels=store_labels),
                string_data={key: secrets.token_urlsafe(32) for key in SECRET_KEYS},
            ),
        )

    def tear_down(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        self.helm("uninstall", self.release, "--wait", "--timeout", "3m", check=False)
        try:
            client.CoreV1Api(self.api_client).delete_namespace(self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(scope="module")
def medusa_store(kube_cluster, kube_api_client) -> Iterator[InstalledStore]:
    store = InstalledStore(kube_cluster, kube_api_client)
    store.create_namespace_and_secret()
    try:
        install = store.helm(
            "install", store.release, str(CHART),
            "--values", str(DEFAULT_VALUES),
            "--set-string", f"store.id={store.store_id}",
            "--set", f"store.host={store.host}",
            "--set", f"existingSecret={store.secret}",
            "--wait", "--wait-for-jobs", "--timeout", "5m",
            check=False,
        )  # fmt: skip
        assert install.returncode == 0, install.stdout + install.stderr
        yield store
    finally:
        store.tear_down()


@pytest.mark.cluster
def test_install_reports_deployed_with_setup_complete(medusa_store):
    status = json.loads(medusa_store.helm("status", medusa_store.release, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    jobs = medusa_store.get("jobs", "-l", "app.kubernetes.io/component=setup")
    assert [job["metadata"]["name"] for job in jobs] == [f"{medusa_store.fullname}-setup-1"]
    assert jobs[0]["status"].get("succeeded") == 1
    workloads = medusa_store.get("deployments") + medusa_store.get("statefulsets")
    assert len(workloads) == 3  # server, redis, postgres
    for workload in workloads:
        assert workload["status"].get("readyReplicas") == 1, workload["metadata"]["name"]


@pytest.mark.cluster
def test_guard_rails_are_in_place(medusa_store):
    (quota,) = medusa_store.get("resourcequota")
    assert quota["status"].get("hard"), quota
    assert len(medusa_store.get("limitrange")) == 1
    policies = {policy["metadata"]["name"] for policy in medusa_store.get("networkpolicy")}
    assert f"{medusa_store.fullname}-default-deny" in policies
    assert len(policies) == 4, sorted(policies)


@pytest.mark.cluster
def test_admitted_pods_are_restricted(medusa_store):
    pods = medusa_store.get("pods")
    components = {pod["metadata"]["labels"]["app.kubernetes.io/component"] for pod in pods}
    assert {"server", "postgres", "redis", "setup"} <= components, components
    for pod in pods:
        check_restricted(pod["metadata"]["name"], pod["spec"])


@pytest.mark.cluster
def test_requests_and_limits_of_every_pod_fit_the_quota(medusa_store):
    """Every pod of the store at once, as the API admitted them (LimitRange defaults applied),
    plus the helm test pod as the API would admit it, within the quota the API holds."""
    (quota,) = medusa_store.get("resourcequota")
    pods = {pod["metadata"]["name"]: pod["spec"] for pod in medusa_store.get("pods")}
    hooks = medusa_store.helm("get", "hooks", medusa_store.release).stdout
    (test_pod,) = [doc for doc in yaml.safe_load_all(hooks) if doc and doc["kind"] == "Pod"]
    admitted = medusa_store.cluster.run(
        medusa_store.cluster.kubectl, "create", "--dry-run=server", "-o", "json",
        "--namespace", medusa_store.namespace, "-f", "-", input=json.dumps(test_pod),
    )  # fmt: skip
    pods[test_pod["metadata"]["name"]] = json.loads(admitted.stdout)["spec"]
    assert len(pods) >= 5, sorted(pods)
    used = sum_usage(list(pods.values()))
    for key in BUDGET:
        assert used[key] <= parse_quantity(quota["spec"]["hard"][key]), (key, used[key], quota["spec"]["hard"])
        assert parse_quantity(quota["status"]["used"][key]) <= parse_quantity(quota["status"]["hard"][key])
    assert len(medusa_store.get("pvc")) <= int(quota["spec"]["hard"]["persistentvolumeclaims"])


@pytest.mark.cluster
def test_every_object_of_the_store_is_labelled(medusa_store):
    manifest = medusa_store.helm("get", "manifest", medusa_store.release).stdout
    names = [f"{doc['kind']}/{doc['metadata']['name']}" for doc in yaml.safe_load_all(manifest) if doc]
    objects = medusa_store.get(",".join(sorted({name.split("/")[0] for name in names})))
    objects = [obj for obj in objects if f"{obj['kind']}/{obj['metadata']['name']}" in names]
    assert len(objects) == len(names), (len(objects), names)
    objects += medusa_store.get("pods,pvc,replicasets,controllerrevisions,jobs")
    for obj in objects:
        check_store_labels(obj, medusa_store.store_id)
    for claim in medusa_store.get("pvc"):
        assert claim["status"]["phase"] == "Bound", claim["metadata"]["name"]
        medusa_store.volumes.add(claim["spec"]["volumeName"])
    assert len(medusa_store.volumes) == 2  # database, media


@pytest.mark.cluster
def test_helm_test_pod_is_admitted_and_scheduled(medusa_store):
    """On the simulated cluster: admission (restricted, quota) and scheduling of the order pod only."""
    result = medusa_store.helm("test", medusa_store.release, "--timeout", "3m", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test-order" in result.stdout and "Succeeded" in result.stdout, result.stdout


@pytest.mark.cluster
def test_uninstall_and_namespace_deletion_leave_nothing(medusa_store):
    """Last in the module: tears the store down and waits for every trace to go."""
    from kubernetes import client

    assert medusa_store.volumes, "the labels test records the store's volumes first"
    medusa_store.tear_down()
    core = client.CoreV1Api(medusa_store.api_client)
    namespace = medusa_store.namespace

    def leftovers() -> list[str]:
        found = [f"pv/{pv.metadata.name}" for pv in core.list_persistent_volume().items
                 if pv.metadata.name in medusa_store.volumes
                 or (pv.spec.claim_ref and pv.spec.claim_ref.namespace == namespace)]  # fmt: skip
        found += [
            f"pvc/{claim.metadata.name}" for claim in core.list_namespaced_persistent_volume_claim(namespace).items
        ]
        found += [f"secret/{secret.metadata.name}" for secret in core.list_namespaced_secret(namespace).items]
        return found

    deadline = time.monotonic() + 60
    while (left := leftovers()) and time.monotonic() < deadline:
        time.sleep(2)
    assert not left, f"left behind after 60 s: {left}"
