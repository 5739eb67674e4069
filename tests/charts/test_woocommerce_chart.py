"""The WooCommerce store chart.

* Rendered templates (no cluster): store labels, Pod Security "restricted" settings, the budget,
  the setup Job's shape, TLS switches.
* The helm test's order script against a local fake of the Store API: it must report the order
  id, and fail when no order comes back.
* On the cluster (marker ``cluster``): install with ``--wait --wait-for-jobs`` in a namespace
  enforcing Pod Security "restricted", guard rails in place, requests within the quota, labels on
  every object, ``helm test`` pod admitted; uninstall + namespace deletion leave nothing behind.
  The simulated cluster runs no containers: there the helm test only proves the test pod is
  admitted and scheduled, not that an order can be placed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from kubernetes.utils import parse_quantity

from tests.charts import CHARTS_DIR, helm

CHART = CHARTS_DIR / "woocommerce"
DEFAULT_VALUES = CHART / "ci" / "default-values.yaml"
TLS_VALUES = CHART / "ci" / "tls-values.yaml"
SECRET_KEYS = (
    "admin-password",
    "db-password",
    "db-root-password",
    "wordpress-auth-key",
    "wordpress-secure-auth-key",
    "wordpress-logged-in-key",
    "wordpress-nonce-key",
    "wordpress-auth-salt",
    "wordpress-secure-auth-salt",
    "wordpress-logged-in-salt",
    "wordpress-nonce-salt",
)
STORE_LABELS = ("store-orchestrator.io/store-id", "store-orchestrator.io/engine")
STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
BUDGET = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


# --- helpers -----------------------------------------------------------------------------


def template(*args: str) -> list[dict]:
    """Renders the chart (hooks included) and returns its objects."""
    result = helm("template", "shop", str(CHART), "--namespace", "shop", *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    """Every pod the objects would run, by owner name: workload templates and bare pods."""
    specs = {}
    for obj in objects:
        if obj["kind"] == "Pod":
            specs[obj["metadata"]["name"]] = obj["spec"]
        elif obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs[obj["metadata"]["name"]] = obj["spec"]["template"]["spec"]
    return specs


def container_amount(container: dict, key: str) -> Decimal:
    """One container's request or limit, e.g. key "limits.cpu"; every container must state it."""
    kind, resource = key.split(".")
    value = container.get("resources", {}).get(kind, {}).get(resource)
    assert value is not None, f"container {container['name']} has no {key}"
    return parse_quantity(value)


def pod_amounts(spec: dict) -> dict[str, Decimal]:
    """What one pod counts against the quota: the larger of its containers' sum and its
    largest init container, per resource (that is how Kubernetes computes it)."""
    amounts = {}
    for key in BUDGET:
        regular = sum((container_amount(c, key) for c in spec["containers"]), Decimal(0))
        init = max((container_amount(c, key) for c in spec.get("initContainers") or []), default=Decimal(0))
        amounts[key] = max(regular, init)
    return amounts


def total(amounts: list[dict[str, Decimal]]) -> dict[str, Decimal]:
    return {key: sum((a[key] for a in amounts), Decimal(0)) for key in BUDGET}


def assert_restricted(name: str, spec: dict) -> None:
    """Pod Security "restricted" plus this project's extras (read-only root, no SA token)."""
    pod_sc = spec.get("securityContext") or {}
    assert spec.get("automountServiceAccountToken") is False, name
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
    for container in spec["containers"] + (spec.get("initContainers") or []):
        sc = container.get("securityContext") or {}
        where = f"{name}/{container['name']}"
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not sc.get("capabilities", {}).get("add"), where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")) is True, where
        assert (sc.get("runAsUser") or pod_sc.get("runAsUser") or 0) > 0, where
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        assert seccomp == "RuntimeDefault", where
        for port in container.get("ports", []):
            assert port["containerPort"] >= 1024, f"{where} binds privileged port {port}"
    for volume in spec.get("volumes", []):
        assert not set(volume) & {"hostPath"}, f"{name} mounts {volume}"


# --- rendered templates -------------------------------------------------------------------


def test_every_rendered_object_carries_the_store_labels():
    for obj in template("--values", str(DEFAULT_VALUES)):
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("store-orchestrator.io/store-id") == "42", where
        assert labels.get("store-orchestrator.io/engine") == "woocommerce", where
        for label in STANDARD_LABELS + ("app.kubernetes.io/managed-by", "app.kubernetes.io/version"):
            assert label in labels, f"{where} lacks {label}"
        for claim in obj.get("spec", {}).get("volumeClaimTemplates", []):
            for label in STORE_LABELS + STANDARD_LABELS:
                assert label in claim["metadata"]["labels"], f"{where} claim lacks {label}"
        template_labels = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels")
        if template_labels is not None:
            for label in STORE_LABELS + STANDARD_LABELS:
                assert label in template_labels, f"{where} pod template lacks {label}"


@pytest.mark.parametrize("values", [DEFAULT_VALUES, TLS_VALUES], ids=["default", "tls"])
def test_every_pod_is_restricted(values: Path):
    specs = pod_specs(template("--values", str(values)))
    assert len(specs) == 4, sorted(specs)  # wordpress, mariadb, setup job, helm test
    for name, spec in specs.items():
        assert_restricted(name, spec)


def test_all_pods_at_once_fit_the_default_quota():
    objects = template("--values", str(DEFAULT_VALUES))
    (quota,) = [obj for obj in objects if obj["kind"] == "ResourceQuota"]
    used = total([pod_amounts(spec) for spec in pod_specs(objects).values()])
    for key in BUDGET:
        assert used[key] <= parse_quantity(quota["spec"]["hard"][key]), (key, used[key])
    claims = [obj for obj in objects if obj["kind"] == "PersistentVolumeClaim"]
    claims += [c for obj in objects for c in obj.get("spec", {}).get("volumeClaimTemplates", [])]
    storage = sum(parse_quantity(c["spec"]["resources"]["requests"]["storage"]) for c in claims)
    assert len(claims) == 2
    assert len(claims) <= int(quota["spec"]["hard"]["persistentvolumeclaims"])
    assert storage <= parse_quantity(quota["spec"]["hard"]["requests.storage"])


def test_the_reference_budget_is_the_default_quota():
    objects = template("--values", str(DEFAULT_VALUES))
    (quota,) = [obj for obj in objects if obj["kind"] == "ResourceQuota"]
    hard = {key: parse_quantity(value) for key, value in quota["spec"]["hard"].items()}
    assert hard["requests.cpu"] == parse_quantity("100m")
    assert hard["limits.cpu"] == parse_quantity("500m")
    assert hard["requests.memory"] == parse_quantity("512Mi")
    assert hard["limits.memory"] == parse_quantity("2Gi")
    assert hard["requests.storage"] == parse_quantity("10Gi")
    assert hard["persistentvolumeclaims"] == 5


def test_setup_is_a_plain_job_named_per_revision():
    objects = template("--values", str(DEFAULT_VALUES))
    (job,) = [obj for obj in objects if obj["kind"] == "Job"]
    assert job["metadata"]["name"] == "shop-woocommerce-setup-1"  # .Release.Revision is 1 here
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "setup"
    assert "helm.sh/hook" not in (job["metadata"].get("annotations") or {})
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "myshop-credentials",
        "key": "admin-password",
    }
    assert env["STORE_URL"]["value"] == "http://myshop.stores.local.dev"


def test_credentials_come_only_from_the_existing_secret():
    objects = template("--values", str(DEFAULT_VALUES))
    assert not [obj for obj in objects if obj["kind"] == "Secret"], "the chart must not create Secrets"
    referenced = set()
    for spec in pod_specs(objects).values():
        for container in spec["containers"] + (spec.get("initContainers") or []):
            for env in container.get("env", []):
                name = env["name"]
                if "PASSWORD" in name or name.endswith(("_KEY", "_SALT")):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    assert ref and ref["name"] == "myshop-credentials", f"{container['name']}: {name}"
                    referenced.add(ref["key"])
    assert referenced == set(SECRET_KEYS)


def test_tls_switches_urls_and_asks_cert_manager():
    objects = template("--values", str(TLS_VALUES))
    (ingress,) = [obj for obj in objects if obj["kind"] == "Ingress"]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert ingress["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-woocommerce-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (job,) = [obj for obj in objects if obj["kind"] == "Job"]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STORE_URL"] == "https://shop.example.com"

    plain = [obj for obj in template("--values", str(DEFAULT_VALUES)) if obj["kind"] == "Ingress"][0]
    assert "tls" not in plain["spec"]
    assert "cert-manager.io/cluster-issuer" not in (plain["metadata"].get("annotations") or {})


def test_notes_print_store_and_admin_urls(tmp_path: Path):
    """NOTES.txt is only rendered by install/upgrade, which need a cluster; a copy of the chart
    renders it into a ConfigMap through `tpl` instead."""
    chart = tmp_path / "woocommerce"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes-under-test.txt")
    (chart / "templates" / "notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes-under-test.txt") . | quote }}\n'
    )
    for values, scheme in ((DEFAULT_VALUES, "http"), (TLS_VALUES, "https")):
        host = yaml.safe_load(values.read_text())["store"]["host"]
        result = helm(
            "template", "shop", str(chart), "--values", str(values), "--show-only", "templates/notes-under-test.yaml"
        )
        assert result.returncode == 0, result.stderr
        notes = yaml.safe_load(result.stdout)["data"]["notes"]
        assert f"Store URL: {scheme}://{host}/" in notes, notes
        assert f"Admin URL: {scheme}://{host}/wp-admin/" in notes, notes


def test_guard_rails_can_be_switched_off():
    kinds = {obj["kind"] for obj in template("--values", str(CHART / "ci" / "guardrails-off-values.yaml"))}
    assert not kinds & {"ResourceQuota", "LimitRange", "NetworkPolicy"}
    kinds = {obj["kind"] for obj in template("--values", str(DEFAULT_VALUES))}
    assert {"ResourceQuota", "LimitRange", "NetworkPolicy"} <= kinds


def test_network_policies_deny_by_default_and_open_only_what_the_store_needs():
    policies = {
        obj["metadata"]["name"].removeprefix("shop-woocommerce-"): obj["spec"]
        for obj in template("--values", str(DEFAULT_VALUES))
        if obj["kind"] == "NetworkPolicy"
    }
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    controller = policies["ingress-controller"]["ingress"][0]["from"][0]
    assert controller["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    setup = policies["setup-egress"]
    assert setup["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "setup"
    assert setup["egress"][0]["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "10.0.0.0/8" in setup["egress"][0]["to"][0]["ipBlock"]["except"]
    # Nothing but the setup job may leave the cluster.
    for name, spec in policies.items():
        for rule in spec.get("egress", []):
            if any("ipBlock" in peer for peer in rule.get("to", [])):
                assert name == "setup-egress", name


# --- the helm test's order script against a fake Store API --------------------------------


class FakeStoreAPI(BaseHTTPRequestHandler):
    """Just enough of /wp-json/wc/store/v1 for files/test-order.sh, with switchable faults."""

    mode = "ok"
    seen: list[tuple[str, str, dict, dict | None]] = []
    token = "cart-token-" + secrets.token_hex(4)

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _answer(self, status: int, body, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> dict | None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.seen.append((self.command, self.path, dict(self.headers), body))
        return body

    def do_GET(self):
        self._record()
        if self.path.startswith("/wp-json/wc/store/v1/products"):
            self._answer(200, [{"id": 17, "name": "Sample", "sku": "sample-tshirt", "images": [{"id": 3}]}])
        elif self.path == "/wp-json/wc/store/v1/cart":
            headers = {} if self.mode == "no-token" else {"Cart-Token": self.token, "Nonce": "abc"}
            self._answer(200, {"items": [], "items_count": 0}, headers)
        else:
            self._answer(404, {"code": "rest_no_route"})

    def do_POST(self):
        body = self._record()
        if self.headers.get("Cart-Token") != self.token:
            self._answer(401, {"code": "woocommerce_rest_missing_nonce"})
        elif self.path == "/wp-json/wc/store/v1/cart/add-item":
            self._answer(201, {"items": [{"key": "k1", "id": body["id"], "quantity": body["quantity"]}]})
        elif self.path == "/wp-json/wc/store/v1/checkout":
            if self.mode == "checkout-fails" or body.get("payment_method") != "cod":
                self._answer(400, {"code": "woocommerce_rest_checkout_invalid_payment_method"})
            elif self.mode == "no-order-id":
                self._answer(200, {"order_id": 0, "status": "checkout-draft"})
            else:
                self._answer(200, {"order_id": 123, "status": "processing", "payment_result": {}})
        else:
            self._answer(404, {"code": "rest_no_route"})


@pytest.fixture
def fake_store() -> Iterator[type[FakeStoreAPI]]:
    handler = type("Handler", (FakeStoreAPI,), {"seen": [], "mode": "ok"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/wp-json/wc/store/v1"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def run_order_script(store: type[FakeStoreAPI], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "STORE_API": store.url,
        "STORE_HOST": "myshop.stores.local.dev",
        "STORE_SCHEME": "http",
        "SAMPLE_SKU": "sample-tshirt",
        "TMPDIR": str(tmp_path),
    }
    return subprocess.run(
        ["sh", str(CHART / "files" / "test-order.sh")], env=env, capture_output=True, text=True, timeout=120
    )


def test_order_script_places_an_order(fake_store, tmp_path):
    result = run_order_script(fake_store, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "order 123 placed" in result.stdout
    calls = [(method, path.split("?")[0]) for method, path, _, _ in fake_store.seen]
    assert calls == [
        ("GET", "/wp-json/wc/store/v1/products"),
        ("GET", "/wp-json/wc/store/v1/cart"),
        ("POST", "/wp-json/wc/store/v1/cart/add-item"),
        ("POST", "/wp-json/wc/store/v1/checkout"),
    ]
    _, _, headers, checkout = fake_store.seen[-1]
    assert headers["Host"] == "myshop.stores.local.dev"
    assert checkout["payment_method"] == "cod"
    assert checkout["billing_address"]["email"].endswith("@myshop.stores.local.dev")
    assert checkout["billing_address"]["country"] == "US"
    assert fake_store.seen[2][3] == {"id": 17, "quantity": 1}


@pytest.mark.parametrize("mode", ["checkout-fails", "no-order-id", "no-token"])
def test_order_script_fails_without_an_order(fake_store, tmp_path, mode):
    fake_store.mode = mode
    result = run_order_script(fake_store, tmp_path)
    assert result.returncode != 0, result.stdout
    assert "order test FAILED" in result.stdout
    assert "placed" not in result.stdout


# --- on the cluster ------------------------------------------------------------------------


class Store:
    """One installed store: its namespace, release and what the tests learned about it."""

    def __init__(self, cluster, api_client):
        suffix = secrets.token_hex(3)
        self.cluster = cluster
        self.api_client = api_client
        self.store_id = f"t{suffix}"
        self.namespace = f"store-wc-{suffix}"
        self.release = f"store-{suffix}"
        self.secret = f"store-{suffix}-credentials"
        self.host = f"wc-{suffix}.stores.local.dev"
        self.volume_names: set[str] = set()

    def helm(self, *args: str, timeout: float = 420, check: bool = True):
        return self.cluster.run(self.cluster.helm, *args, "--namespace", self.namespace, timeout=timeout, check=check)

    def kubectl_json(self, *args: str) -> dict:
        result = self.cluster.run(self.cluster.kubectl, *args, "--namespace", self.namespace, "-o", "json")
        return json.loads(result.stdout)


def _create_namespace_and_secret(store: Store) -> None:
    from kubernetes import client

    core = client.CoreV1Api(store.api_client)
    labels = {
        "app.kubernetes.io/managed-by": "store-orchestrator",
        "store-orchestrator.io/store-id": store.store_id,
        "store-orchestrator.io/owner-id": "1",
        "store-orchestrator.io/engine": "woocommerce",
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=store.namespace, labels=labels)))
    core.create_namespaced_secret(
        store.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=store.secret,
                labels={k: v for k, v in labels.items() if k.startswith("store-orchestrator.io/")},
            ),
            string_data={key: secrets.token_urlsafe(32) for key in SECRET_KEYS},
        ),
    )


def _teardown(store: Store) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    store.helm("uninstall", store.release, "--wait", "--timeout", "3m", check=False)
    try:
        client.CoreV1Api(store.api_client).delete_namespace(store.namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(scope="module")
def installed_store(kube_cluster, kube_api_client) -> Iterator[Store]:
    store = Store(kube_cluster, kube_api_client)
    _create_namespace_and_secret(store)
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
        _teardown(store)


@pytest.mark.cluster
def test_install_reports_deployed(installed_store):
    status = json.loads(installed_store.helm("status", installed_store.release, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    jobs = installed_store.kubectl_json("get", "jobs", "-l", "app.kubernetes.io/component=setup")["items"]
    assert [job["metadata"]["name"] for job in jobs] == [f"{installed_store.release}-woocommerce-setup-1"]
    assert jobs[0]["status"].get("succeeded") == 1
    for kind in ("deployment", "statefulset"):
        for workload in installed_store.kubectl_json("get", kind)["items"]:
            assert workload["status"].get("readyReplicas") == 1, workload["metadata"]["name"]


@pytest.mark.cluster
def test_guard_rails_exist(installed_store):
    quotas = installed_store.kubectl_json("get", "resourcequota")["items"]
    limits = installed_store.kubectl_json("get", "limitrange")["items"]
    policies = {p["metadata"]["name"]: p["spec"] for p in installed_store.kubectl_json("get", "networkpolicy")["items"]}
    assert len(quotas) == 1 and quotas[0]["status"].get("hard"), quotas
    assert len(limits) == 1, limits
    deny = policies[f"{installed_store.release}-woocommerce-default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert len(policies) == 5, sorted(policies)


@pytest.mark.cluster
def test_pods_are_restricted_and_setup_runs_beside_wordpress(installed_store):
    pods = installed_store.kubectl_json("get", "pods")["items"]
    by_component = {pod["metadata"]["labels"]["app.kubernetes.io/component"]: pod for pod in pods}
    assert {"wordpress", "mariadb", "setup"} <= set(by_component), sorted(by_component)
    for pod in pods:
        assert_restricted(pod["metadata"]["name"], pod["spec"])
    # The setup pod shares the ReadWriteOnce wp-content volume, hence the node.
    assert by_component["setup"]["spec"]["nodeName"] == by_component["wordpress"]["spec"]["nodeName"]


@pytest.mark.cluster
def test_requests_of_every_pod_fit_the_quota(installed_store):
    """All pods of the store at once (workloads, the finished setup pod and the helm test pod,
    as the API admits it: LimitRange defaults applied) stay within the quota the API holds."""
    (quota,) = installed_store.kubectl_json("get", "resourcequota")["items"]
    pods = {pod["metadata"]["name"]: pod["spec"] for pod in installed_store.kubectl_json("get", "pods")["items"]}
    hooks = installed_store.helm("get", "hooks", installed_store.release).stdout
    (test_pod,) = [doc for doc in yaml.safe_load_all(hooks) if doc and doc["kind"] == "Pod"]
    admitted = installed_store.cluster.run(
        installed_store.cluster.kubectl, "create", "--dry-run=server", "-o", "json",
        "--namespace", installed_store.namespace, "-f", "-",
        input=json.dumps(test_pod),
    )  # fmt: skip
    pods[test_pod["metadata"]["name"]] = json.loads(admitted.stdout)["spec"]
    assert len(pods) >= 4, sorted(pods)
    used = total([pod_amounts(spec) for spec in pods.values()])
    for key in BUDGET:
        assert used[key] <= parse_quantity(quota["spec"]["hard"][key]), (key, used[key], quota["spec"]["hard"])
        assert parse_quantity(quota["status"]["used"][key]) <= parse_quantity(quota["status"]["hard"][key])
    claims = installed_store.kubectl_json("get", "pvc")["items"]
    assert len(claims) <= int(quota["spec"]["hard"]["persistentvolumeclaims"])


@pytest.mark.cluster
def test_every_object_carries_the_store_labels(installed_store):
    manifest = installed_store.helm("get", "manifest", installed_store.release).stdout
    names = [f"{doc['kind']}/{doc['metadata']['name']}" for doc in yaml.safe_load_all(manifest) if doc]
    objects = installed_store.kubectl_json("get", *names)["items"]
    objects += installed_store.kubectl_json("get", "pods,pvc,replicasets,jobs")["items"]
    assert len(objects) >= len(names) + 5
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("store-orchestrator.io/store-id") == installed_store.store_id, where
        assert labels.get("store-orchestrator.io/engine") == "woocommerce", where
        for label in STANDARD_LABELS:
            assert label in labels, f"{where} lacks {label}"
    # Remember the volumes, to prove later that uninstalling releases them.
    for claim in installed_store.kubectl_json("get", "pvc")["items"]:
        assert claim["status"]["phase"] == "Bound", claim["metadata"]["name"]
        installed_store.volume_names.add(claim["spec"]["volumeName"])
    assert len(installed_store.volume_names) == 2


@pytest.mark.cluster
def test_upgrade_runs_a_new_setup_job_within_the_quota(installed_store):
    """An upgrade that changes WordPress' configuration replaces the pod (Recreate: the quota
    has no room for two) and runs setup-2 instead of patching the immutable setup-1 Job."""
    upgrade = installed_store.helm(
        "upgrade", installed_store.release, str(CHART), "--reuse-values",
        "--set", "wordpress.apache.maxRequestWorkers=5",
        "--wait", "--wait-for-jobs", "--timeout", "5m",
        check=False,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    status = json.loads(installed_store.helm("status", installed_store.release, "-o", "json").stdout)
    assert (status["info"]["status"], status["version"]) == ("deployed", 2)
    jobs = installed_store.kubectl_json("get", "jobs", "-l", "app.kubernetes.io/component=setup")["items"]
    assert [job["metadata"]["name"] for job in jobs] == [f"{installed_store.release}-woocommerce-setup-2"]
    assert jobs[0]["status"].get("succeeded") == 1
    pods = installed_store.kubectl_json("get", "pods", "-l", "app.kubernetes.io/component=wordpress")["items"]
    pods = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Running", pods


@pytest.mark.cluster
def test_helm_test_pod_is_admitted_and_scheduled(installed_store):
    """On the simulated cluster this proves admission (restricted, quota) and scheduling of the
    order pod only: no container runs there, so no order is placed."""
    result = installed_store.helm("test", installed_store.release, "--timeout", "3m", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test-order" in result.stdout and "Succeeded" in result.stdout, result.stdout


@pytest.mark.cluster
def test_uninstall_and_namespace_deletion_leave_nothing(installed_store):
    """Runs last in this module: it tears the store down."""
    from kubernetes import client

    assert installed_store.volume_names, "the labels test records the store's volumes first"
    _teardown(installed_store)
    core = client.CoreV1Api(installed_store.api_client)

    def leftovers() -> list[str]:
        found = [f"pv/{pv.metadata.name}" for pv in core.list_persistent_volume().items
                 if pv.metadata.name in installed_store.volume_names
                 or (pv.spec.claim_ref and pv.spec.claim_ref.namespace == installed_store.namespace)]  # fmt: skip
        namespace = installed_store.namespace
        found += [f"pvc/{c.metadata.name}" for c in core.list_namespaced_persistent_volume_claim(namespace).items]
        found += [f"secret/{s.metadata.name}" for s in core.list_namespaced_secret(namespace).items]
        return found

    deadline = time.monotonic() + 60
    while (left := leftovers()) and time.monotonic() < deadline:
        time.sleep(2)
    assert not left, f"left behind after 60 s: {left}"
