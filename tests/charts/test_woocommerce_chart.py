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
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from kubernetes.utils import parse_quantity

from stores_app.kube import SECRET_KEYS as ORCHESTRATOR_SECRET_KEYS
from tests.charts import CHARTS_DIR, store_chart

CHART = CHARTS_DIR / "woocommerce"
DEFAULT_VALUES = CHART / "ci" / "default-values.yaml"
TLS_VALUES = CHART / "ci" / "tls-values.yaml"
# The keys the orchestrator writes: the chart must read exactly these.
SECRET_KEYS = tuple(ORCHESTRATOR_SECRET_KEYS["woocommerce"])
render = partial(store_chart.render, CHART)


# --- helpers -----------------------------------------------------------------------------


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    """Every pod the objects would run, by owner name: workload templates and bare pods."""
    specs = {}
    for obj in objects:
        if obj["kind"] == "Pod":
            specs[obj["metadata"]["name"]] = obj["spec"]
        elif obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs[obj["metadata"]["name"]] = obj["spec"]["template"]["spec"]
    return specs


# --- rendered templates -------------------------------------------------------------------


def test_every_rendered_object_carries_the_store_labels():
    for obj in render(DEFAULT_VALUES):
        store_chart.check_store_labels(obj, "42", "woocommerce")
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        for label in ("app.kubernetes.io/managed-by", "app.kubernetes.io/version"):
            assert label in obj["metadata"]["labels"], f"{where} lacks {label}"
        for claim in obj.get("spec", {}).get("volumeClaimTemplates", []):
            for label in store_chart.STORE_LABELS + store_chart.STANDARD_LABELS:
                assert label in claim["metadata"]["labels"], f"{where} claim lacks {label}"
        template_labels = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels")
        if template_labels is not None:
            for label in store_chart.STORE_LABELS + store_chart.STANDARD_LABELS:
                assert label in template_labels, f"{where} pod template lacks {label}"


@pytest.mark.parametrize("values", [DEFAULT_VALUES, TLS_VALUES], ids=["default", "tls"])
def test_every_pod_is_restricted(values: Path):
    specs = pod_specs(render(values))
    assert len(specs) == 4, sorted(specs)  # wordpress, mariadb, setup job, helm test
    for name, spec in specs.items():
        store_chart.check_restricted(name, spec)


def test_all_pods_at_once_fit_the_default_quota():
    objects = render(DEFAULT_VALUES)
    store_chart.check_fits_rendered_quota(objects, pod_specs(objects).values(), claims=2)


def test_the_reference_budget_is_the_default_quota():
    objects = render(DEFAULT_VALUES)
    (quota,) = [obj for obj in objects if obj["kind"] == "ResourceQuota"]
    hard = {key: parse_quantity(value) for key, value in quota["spec"]["hard"].items()}
    assert hard["requests.cpu"] == parse_quantity("100m")
    assert hard["limits.cpu"] == parse_quantity("500m")
    assert hard["requests.memory"] == parse_quantity("512Mi")
    assert hard["limits.memory"] == parse_quantity("2Gi")
    assert hard["requests.storage"] == parse_quantity("10Gi")
    assert hard["persistentvolumeclaims"] == 5


def test_setup_is_a_plain_job_named_per_revision():
    objects = render(DEFAULT_VALUES)
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
    objects = render(DEFAULT_VALUES)
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
    objects = render(TLS_VALUES)
    store_chart.check_tls_ingress(objects, render(DEFAULT_VALUES), "woocommerce")
    (job,) = [obj for obj in objects if obj["kind"] == "Job"]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STORE_URL"] == "https://shop.example.com"


def test_notes_print_store_and_admin_urls(tmp_path: Path):
    for values, scheme in ((DEFAULT_VALUES, "http"), (TLS_VALUES, "https")):
        host = yaml.safe_load(values.read_text())["store"]["host"]
        notes = store_chart.render_notes(CHART, values, tmp_path)
        assert f"Store URL: {scheme}://{host}/" in notes, notes
        assert f"Admin URL: {scheme}://{host}/wp-admin/" in notes, notes


def test_guard_rails_can_be_switched_off():
    kinds = {obj["kind"] for obj in render(CHART / "ci" / "guardrails-off-values.yaml")}
    assert not kinds & {"ResourceQuota", "LimitRange", "NetworkPolicy"}
    kinds = {obj["kind"] for obj in render(DEFAULT_VALUES)}
    assert {"ResourceQuota", "LimitRange", "NetworkPolicy"} <= kinds


def test_network_policies_deny_by_default_and_open_only_what_the_store_needs():
    policies = {
        obj["metadata"]["name"].removeprefix("shop-woocommerce-"): obj["spec"]
        for obj in render(DEFAULT_VALUES)
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


# The fixture installed_store (tests/charts/conftest.py) installs one store of it for these tests.
STORE_ENGINE = store_chart.Engine(CHART, DEFAULT_VALUES, SECRET_KEYS, short="wc", id_prefix="t")


@pytest.mark.cluster
def test_install_reports_deployed(installed_store):
    store_chart.check_deployed(installed_store)


@pytest.mark.cluster
def test_guard_rails_exist(installed_store):
    policies = store_chart.check_guard_rails(installed_store, policies=5)
    deny = policies[f"{installed_store.fullname}-default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}


@pytest.mark.cluster
def test_pods_are_restricted_and_setup_runs_beside_wordpress(installed_store):
    by_component = store_chart.check_pods_restricted(installed_store, {"wordpress", "mariadb", "setup"})
    # The setup pod shares the ReadWriteOnce wp-content volume, hence the node.
    assert by_component["setup"]["spec"]["nodeName"] == by_component["wordpress"]["spec"]["nodeName"]


@pytest.mark.cluster
def test_requests_of_every_pod_fit_the_quota(installed_store):
    """All pods of the store at once: workloads, the finished setup pod and the helm test pod."""
    store_chart.check_pods_fit_quota(installed_store, min_pods=4)


@pytest.mark.cluster
def test_every_object_carries_the_store_labels(installed_store):
    objects = installed_store.release_objects()
    released = len(objects)
    objects += installed_store.get("pods,pvc,replicasets,jobs")
    assert len(objects) >= released + 5
    store_chart.check_labels_and_record_volumes(installed_store, objects, volumes=2)


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
    status = installed_store.status()
    assert (status["info"]["status"], status["version"]) == ("deployed", 2)
    store_chart.check_setup_succeeded(installed_store, 2)
    pods = installed_store.get("pods", "-l", "app.kubernetes.io/component=wordpress")
    pods = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Running", pods


@pytest.mark.cluster
def test_helm_test_pod_is_admitted_and_scheduled(installed_store):
    """On the simulated cluster this proves admission (restricted, quota) and scheduling of the
    order pod only: no container runs there, so no order is placed."""
    store_chart.check_helm_test_passes(installed_store)


@pytest.mark.cluster
def test_uninstall_and_namespace_deletion_leave_nothing(installed_store):
    """Runs last in this module: it tears the store down."""
    store_chart.check_teardown_leaves_nothing(installed_store)
