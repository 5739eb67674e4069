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
import re
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
GUARDRAILS_OFF_VALUES = CHART / "ci" / "guardrails-off-values.yaml"
LOCKED_DOWN_VALUES = CHART / "ci" / "locked-down-values.yaml"
TRAEFIK_VALUES = CHART / "ci" / "traefik-values.yaml"
STORE_HTTP = CHART / "files" / "store-http.php"
POD_COMPONENTS = {"wordpress", "mariadb", "setup", "cron", "test"}
# The CronJob's default schedule: every 5 minutes, from a minute 0-4 picked from the release name.
SPREAD_SCHEDULE = r"[0-4]-59/5 \* \* \* \*"
# The keys the orchestrator writes: the chart must read exactly these.
SECRET_KEYS = tuple(ORCHESTRATOR_SECRET_KEYS["woocommerce"])
render = partial(store_chart.render, CHART)


# --- helpers -----------------------------------------------------------------------------


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    """Every pod the objects would run, by component: workloads, Jobs, the CronJob, the test pod."""
    return {component: spec for component, (_, spec) in store_chart.every_pod(objects).items()}


def env_of(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def containers(spec: dict) -> list[dict]:
    return spec["containers"] + (spec.get("initContainers") or [])


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
    for component, (labels, _) in store_chart.every_pod(render(DEFAULT_VALUES)).items():
        for label in store_chart.STORE_LABELS + store_chart.STANDARD_LABELS:
            assert label in labels, f"{component} pods lack {label}"


@pytest.mark.parametrize("values", [DEFAULT_VALUES, TLS_VALUES], ids=["default", "tls"])
def test_every_pod_is_restricted(values: Path):
    specs = pod_specs(render(values))
    assert set(specs) == POD_COMPONENTS, sorted(specs)
    for name, spec in specs.items():
        store_chart.check_restricted(name, spec)


def test_all_pods_at_once_and_one_more_fit_the_default_quota():
    """WordPress, MariaDB, a setup Job, a cron run, the helm test pod, all at once, and room for one
    more of the largest workload pod (a replacement while its predecessor terminates, a debug pod):
    nothing the store runs is refused by its own quota."""
    objects = render(DEFAULT_VALUES)
    store_chart.check_fits_rendered_quota(objects, pod_specs(objects).values(), claims=2)


def test_what_runs_all_the_time_keeps_to_the_reference_budget():
    """WordPress, MariaDB and a cron run fit the reference budget; the quota's excess over it is
    only the room for what runs now and then (values.yaml's table)."""
    objects = render(DEFAULT_VALUES)
    pods = pod_specs(objects)
    steady = store_chart.sum_usage(pods[component] for component in ("wordpress", "mariadb", "cron"))
    for key, amount in store_chart.REFERENCE_BUDGET.items():
        assert steady[key] <= parse_quantity(amount), (key, steady[key])
    (quota,) = [obj for obj in objects if obj["kind"] == "ResourceQuota"]
    hard = {key: parse_quantity(value) for key, value in quota["spec"]["hard"].items()}
    assert hard["requests.storage"] == parse_quantity("10Gi")
    assert hard["persistentvolumeclaims"] == 5


def test_setup_is_a_plain_job_named_per_revision():
    objects = render(DEFAULT_VALUES)
    (job,) = [obj for obj in objects if obj["kind"] == "Job"]
    assert job["metadata"]["name"] == "shop-woocommerce-setup-1"  # .Release.Revision is 1 here
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "setup"
    assert "helm.sh/hook" not in (job["metadata"].get("annotations") or {})
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
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
        for container in containers(spec):
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
    kinds = {obj["kind"] for obj in render(GUARDRAILS_OFF_VALUES)}
    assert not kinds & {"ResourceQuota", "LimitRange", "NetworkPolicy"}
    kinds = {obj["kind"] for obj in render(DEFAULT_VALUES)}
    assert {"ResourceQuota", "LimitRange", "NetworkPolicy"} <= kinds


# --- background work ---------------------------------------------------------------------


def test_a_cronjob_runs_wp_cron_and_the_action_scheduler_instead_of_page_loads():
    objects = render(DEFAULT_VALUES)
    (cron,) = [obj for obj in objects if obj["kind"] == "CronJob"]
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (1, 2)
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    # A run ends before the next one is due (every 5 minutes: 300 s), so runs never queue up.
    assert re.fullmatch(SPREAD_SCHEDULE, spec["schedule"]) and job["activeDeadlineSeconds"] < 300
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["sh", "/scripts/cron.sh"]
    assert container["image"] == yaml.safe_load((CHART / "values.yaml").read_text())["setup"]["image"]["repository"] + (
        ":cli-2.12.0-php8.3"
    )
    # wp-cli needs WordPress core (copied from the WordPress image, without its wp-content) and
    # the store's wp-content volume, which is ReadWriteOnce: the run shares WordPress' node.
    (init,) = pod["initContainers"]
    assert init["image"].startswith("docker.io/library/wordpress:") and "--exclude=./wp-content" in init["command"][2]
    assert {"name": "wp-content", "persistentVolumeClaim": {"claimName": "shop-woocommerce-wp-content"}} in pod[
        "volumes"
    ]
    affinity = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert affinity["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "wordpress"
    assert {"name": "scripts", "mountPath": "/scripts", "readOnly": True} in container["volumeMounts"]
    scripts = next(obj for obj in objects if obj["metadata"]["name"] == "shop-woocommerce-scripts")
    assert scripts["data"]["cron.sh"].strip() == (CHART / "files" / "cron.sh").read_text().strip()


def test_stores_start_their_cron_runs_in_different_minutes(tmp_path: Path):
    """By default each store runs every 5 minutes from a minute 0-4 of its own, picked from the
    release name: the same on every render (an upgrade does not move it), spread across stores (a
    thousand stores starting their runs in one minute stalled the cluster's controllers). A
    schedule set in the values is used as it is."""

    def schedule(release: str, *values: Path) -> str:
        objects = render(*values, release=release)
        (cron,) = [obj for obj in objects if obj["kind"] == "CronJob"]
        return cron["spec"]["schedule"]

    releases = [f"store-{i}" for i in range(20)]
    schedules = {release: schedule(release, DEFAULT_VALUES) for release in releases}
    assert all(re.fullmatch(SPREAD_SCHEDULE, s) for s in schedules.values()), schedules
    first_minutes = {int(s.split("-")[0]) for s in schedules.values()}
    assert len(first_minutes) >= 4, f"20 stores should use at least 4 of the 5 minutes: {schedules}"
    assert schedule("store-3", DEFAULT_VALUES) == schedules["store-3"], "the same release keeps its minute"

    hourly = tmp_path / "hourly.yaml"
    hourly.write_text(yaml.safe_dump({"cron": {"schedule": "17 * * * *"}}))
    assert schedule("store-3", DEFAULT_VALUES, hourly) == "17 * * * *"


@pytest.mark.parametrize(
    ("values", "cron"), [(DEFAULT_VALUES, True), (GUARDRAILS_OFF_VALUES, False)], ids=["on", "off"]
)
def test_wordpress_leaves_wp_cron_to_the_cronjob_only_when_there_is_one(values: Path, cron: bool):
    objects = render(values)
    assert bool([obj for obj in objects if obj["kind"] == "CronJob"]) is cron
    for component, spec in pod_specs(objects).items():
        for container in spec["containers"]:
            extra = env_of(container).get("WORDPRESS_CONFIG_EXTRA")
            if extra:
                assert ("define('DISABLE_WP_CRON', true);" in extra["value"]) is cron, component


# --- egress and loopback --------------------------------------------------------------------


def test_every_pod_that_runs_wordpress_code_loads_the_store_http_rules():
    """wp-config.php requires files/store-http.php: every pod with WordPress' configuration
    mounts it there, and says where requests to the store's own URL go: Apache in the same pod
    for WordPress, the WordPress Service (a Service of this release, port 80) for the jobs."""
    objects = render(DEFAULT_VALUES)
    (config_map,) = [obj for obj in objects if obj["metadata"]["name"] == "shop-woocommerce-php"]
    assert config_map["data"]["store-http.php"].strip() == STORE_HTTP.read_text().strip()
    services = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Service"}
    assert [port["port"] for port in services["shop-woocommerce-wordpress"]["spec"]["ports"]] == [80]
    loopbacks = {}
    for component, spec in pod_specs(objects).items():
        (container,) = [c for c in spec["containers"] if "WORDPRESS_CONFIG_EXTRA" in env_of(c)] or [None]
        if container is None:
            continue
        env = env_of(container)
        assert "require_once '/etc/wordpress-store/store-http.php';" in env["WORDPRESS_CONFIG_EXTRA"]["value"]
        assert {"name": "store-php", "mountPath": "/etc/wordpress-store", "readOnly": True} in container[
            "volumeMounts"
        ], component
        assert {"name": "store-php", "configMap": {"name": "shop-woocommerce-php"}} in spec["volumes"], component
        loopbacks[component] = env["STORE_LOOPBACK_URL"]["value"]
    assert loopbacks == {
        "wordpress": "http://localhost:8080",
        "setup": "http://shop-woocommerce-wordpress",
        "cron": "http://shop-woocommerce-wordpress",
    }


@pytest.mark.parametrize(("values", "blocked"), [(DEFAULT_VALUES, "false"), (LOCKED_DOWN_VALUES, "true")])
def test_without_internet_egress_wordpress_refuses_outside_calls_at_once(values: Path, blocked: str):
    objects = render(values)
    pods = pod_specs(objects)
    for component in ("wordpress", "cron"):
        (container,) = pods[component]["containers"]
        assert env_of(container)["STORE_HTTP_BLOCK_EXTERNAL"]["value"] == blocked, component
    # The setup Job has a rule of its own (setupEgress) and is never blocked.
    assert "STORE_HTTP_BLOCK_EXTERNAL" not in env_of(pods["setup"]["containers"][0])
    names = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "NetworkPolicy"}
    assert ("shop-woocommerce-wordpress-egress" in names) is (blocked == "false")


INTERNET = "ipBlock 0.0.0.0/0:443"
# What each pod may reach (egress) and be reached from (ingress): README "What each pod may reach".
REACH = {
    "wordpress": ({"namespace", "controller:http"}, {"namespace", "dns:53", INTERNET}),
    "mariadb": ({"namespace"}, set()),
    "setup": ({"namespace"}, {"namespace", "dns:53", INTERNET}),
    "cron": ({"namespace"}, {"namespace", "dns:53", INTERNET}),
    "test": ({"namespace"}, {"namespace", "dns:53"}),
}


@pytest.mark.parametrize("values", [DEFAULT_VALUES, LOCKED_DOWN_VALUES, TRAEFIK_VALUES], ids=lambda p: p.stem)
def test_each_pod_reaches_what_it_needs_and_nothing_else(values: Path):
    objects = render(values)
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart_values = store_chart.merge(chart_values, yaml.safe_load(values.read_text()))
    names = store_chart.peer_names(chart_values)
    locked = not chart_values["networkPolicy"]["wordpressEgress"]["enabled"]
    pods = store_chart.every_pod(objects)
    assert set(pods) == set(REACH)
    for component, (labels, _) in pods.items():
        ingress, egress = REACH[component]
        if locked and component in ("wordpress", "cron"):
            egress = egress - {INTERNET}
        assert store_chart.reachable(objects, labels, "ingress", names) == ingress, component
        assert store_chart.reachable(objects, labels, "egress", names) == egress, component
    # A pod of no component (kubectl run debug) is a client like the others.
    debug = {"run": "debug"}
    assert store_chart.reachable(objects, debug, "egress", names) == {"namespace", "dns:53"}
    for policy in (obj for obj in objects if obj["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    assert "10.0.0.0/8" in peer["ipBlock"]["except"], "no reaching in-cluster addresses"


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


# installed_store (read-only checks) and fresh_store (tests that change the store) install stores
# of this engine: tests/charts/conftest.py.
STORE_ENGINE = store_chart.Engine(CHART, DEFAULT_VALUES, SECRET_KEYS, short="wc", id_prefix="t")


@pytest.mark.cluster
def test_install_reports_deployed(installed_store):
    store_chart.check_deployed(installed_store)


@pytest.mark.cluster
def test_guard_rails_exist(installed_store):
    policies = store_chart.check_guard_rails(installed_store, policies=6)
    deny = policies[f"{installed_store.fullname}-default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}


@pytest.mark.cluster
def test_pods_are_restricted_and_setup_runs_beside_wordpress(installed_store):
    by_component = store_chart.check_pods_restricted(installed_store, {"wordpress", "mariadb", "setup"})
    # The setup pod shares the ReadWriteOnce wp-content volume, hence the node.
    assert by_component["setup"]["spec"]["nodeName"] == by_component["wordpress"]["spec"]["nodeName"]


@pytest.mark.cluster
def test_requests_of_every_pod_fit_the_quota(installed_store):
    """All pods of the store at once: workloads, the finished setup pod, what may start any moment
    (helm test pod, a cron run), each admitted by the API, and room for one pod more."""
    store_chart.check_pods_fit_quota(installed_store, min_pods=5)


@pytest.mark.cluster
def test_every_object_carries_the_store_labels(installed_store):
    objects = installed_store.release_objects()
    released = len(objects)
    objects += installed_store.get("pods,pvc,replicasets,jobs")
    assert len(objects) >= released + 5
    store_chart.check_labels_and_volumes(installed_store, objects, volumes=2)


@pytest.mark.cluster
def test_helm_test_pod_is_admitted_and_scheduled(installed_store):
    """On the simulated cluster this proves admission (restricted, quota) and scheduling of the
    order pod only: no container runs there, so no order is placed."""
    store_chart.check_helm_test_passes(installed_store)


@pytest.mark.cluster
def test_upgrade_rolls_every_workload_within_the_quota(fresh_store):
    """New WordPress and MariaDB images: the WordPress pod is replaced (Recreate), MariaDB's pod in
    place, setup-2 runs instead of patching the immutable setup-1 Job, and the namespace's own quota
    refuses nothing on the way."""
    store_chart.check_upgrade_rolls_every_workload(
        fresh_store, {"wordpress.image.tag": "7.1.0-php8.4-apache", "mariadb.image.tag": "11.8.7"}
    )


@pytest.mark.cluster
def test_a_cron_run_is_admitted_completes_and_leaves_the_store_ready(fresh_store, settings):
    """A run started from the CronJob is admitted beside every other pod of the store (quota,
    Pod Security), lands on WordPress' node and is completed by the simulator; a run that has not
    finished yet does not make the store look unready to the orchestrator."""
    from stores_app import kube

    store = fresh_store
    (cron,) = store.get("cronjobs")
    assert re.fullmatch(SPREAD_SCHEDULE, cron["spec"]["schedule"]) and cron["spec"]["concurrencyPolicy"] == "Forbid"
    run = f"{store.fullname}-cron-now"
    store.cluster.run(store.cluster.kubectl, "create", "job", run, f"--from=cronjob/{cron['metadata']['name']}",
                      "--namespace", store.namespace)  # fmt: skip
    store.cluster.run(store.cluster.kubectl, "wait", "--for=condition=complete", f"job/{run}", "--timeout=120s",
                      "--namespace", store.namespace)  # fmt: skip
    (pod,) = store.get("pods", "-l", f"job-name={run}")
    (wordpress,) = store.get("pods", "-l", "app.kubernetes.io/component=wordpress")
    assert pod["spec"]["nodeName"] == wordpress["spec"]["nodeName"]
    store_chart.check_restricted(pod["metadata"]["name"], pod["spec"])
    store_chart.check_store_labels(pod, store.store_id, "woocommerce")

    # A run that cannot finish (no node matches it) belongs to the CronJob, not to the release.
    job = json.loads(store.cluster.run(
        store.cluster.kubectl, "create", "job", f"{run}-stuck", f"--from=cronjob/{cron['metadata']['name']}",
        "--dry-run=client", "-o", "json", "--namespace", store.namespace,
    ).stdout)  # fmt: skip
    job["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "no-such-node"}
    store.cluster.run(store.cluster.kubectl, "create", "-f", "-", "--namespace", store.namespace,
                      input=json.dumps(job))  # fmt: skip
    settings.KUBECONFIG = store.cluster.kubeconfig
    kube.reset_client()
    try:
        readiness = kube.KubeGateway().readiness(store.namespace, store.release)
    finally:
        kube.reset_client()
    assert readiness.ready, readiness


@pytest.mark.cluster
def test_uninstall_and_namespace_deletion_leave_nothing(fresh_store):
    store_chart.check_teardown_leaves_nothing(fresh_store, volumes=2)
