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
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import yaml
from kubernetes.utils import parse_quantity

from stores_app.kube import SECRET_KEYS as ORCHESTRATOR_SECRET_KEYS
from tests.charts import CHARTS_DIR, REPO_ROOT, helm, store_chart

CHART = CHARTS_DIR / "medusa"
DEFAULT_VALUES = CHART / "ci" / "default-values.yaml"
TLS_VALUES = CHART / "ci" / "tls-values.yaml"
TRAEFIK_VALUES = CHART / "ci" / "traefik-values.yaml"
ORDER_SCRIPT = CHART / "files" / "place-order.mjs"
IMAGE_PROJECT = REPO_ROOT / "deploy" / "images" / "medusa"
# docs/CONVENTIONS.md: the keys the orchestrator writes into existingSecret for Medusa.
# The keys the orchestrator writes: the chart must read exactly these.
SECRET_KEYS = tuple(ORCHESTRATOR_SECRET_KEYS["medusa"])
POD_COMPONENTS = {"server", "postgres", "redis", "setup", "test"}
render = partial(store_chart.render, CHART)


# --- helpers -----------------------------------------------------------------------------------


def pods_of(objects: list[dict]) -> dict[str, dict]:
    """Pod specs by component: workloads, the setup Job and the helm test pod."""
    return {component: spec for component, (_, spec) in store_chart.every_pod(objects).items()}


# --- rendered templates --------------------------------------------------------------------------


@pytest.mark.parametrize("values", [DEFAULT_VALUES, TLS_VALUES], ids=["default", "tls"])
def test_every_object_and_pod_template_carries_the_store_labels(values: Path):
    store_id = yaml.safe_load(values.read_text())["store"]["id"]
    for obj in render(values):
        store_chart.check_store_labels(obj, store_id, "medusa")
        assert "app.kubernetes.io/managed-by" in obj["metadata"]["labels"]
        assert "app.kubernetes.io/version" in obj["metadata"]["labels"]
        spec = obj.get("spec") or {}
        if "template" in spec:
            store_chart.check_store_labels({**spec["template"], "kind": obj["kind"], "metadata": {
                "name": obj["metadata"]["name"], **spec["template"]["metadata"]}}, store_id, "medusa")  # fmt: skip
        for claim in spec.get("volumeClaimTemplates", []):
            store_chart.check_store_labels({**claim, "kind": "PersistentVolumeClaim"}, store_id, "medusa")


@pytest.mark.parametrize("values", [DEFAULT_VALUES, TLS_VALUES], ids=["default", "tls"])
def test_every_pod_is_restricted(values: Path):
    pods = pods_of(render(values))
    assert set(pods) == POD_COMPONENTS, sorted(pods)
    for component, spec in pods.items():
        store_chart.check_restricted(component, spec)
        assert spec["securityContext"]["runAsUser"] > 0


def test_every_pod_at_once_and_one_more_fit_the_default_quota():
    """Server, Postgres, Redis, a setup Job, the helm test pod, all at once, and room for one more
    of the largest workload pod (a replacement while its predecessor terminates, a debug pod):
    nothing the store runs is refused by its own quota."""
    objects = render(DEFAULT_VALUES)
    hard = store_chart.check_fits_rendered_quota(objects, pods_of(objects).values(), claims=2)  # database and media
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
    # The server waits for the same script's marker instead of crash-looping on an empty database, and
    # for this revision's marker: on an upgrade its migrations run before the new server starts.
    server = pods_of(objects)["server"]
    assert server["initContainers"][0]["command"] == ["sh", "/app/setup-store.sh", "--wait"]
    chart_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    waiter = {item["name"]: item.get("value") for item in server["initContainers"][0]["env"]}
    assert env["SETUP_MARKER"]["value"] == waiter["SETUP_MARKER"] == f"{chart_version}/1"


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
    store_chart.check_tls_ingress(objects, render(DEFAULT_VALUES), "medusa")
    server = pods_of(objects)["server"]["containers"][0]
    env = {item["name"]: item.get("value") for item in server["env"]}
    assert env["MEDUSA_BACKEND_URL"] == "https://shop.example.com"
    assert env["STORE_CORS"] == "https://shop.example.com,https://www.example.com"


@pytest.mark.parametrize(("values", "scheme"), [(DEFAULT_VALUES, "http"), (TLS_VALUES, "https")], ids=["http", "https"])
def test_notes_print_store_and_admin_urls(values: Path, scheme: str, tmp_path: Path):
    notes = store_chart.render_notes(CHART, values, tmp_path)
    host = yaml.safe_load(values.read_text())["store"]["host"]
    assert f"Store URL:   {scheme}://{host}/store" in notes, notes
    assert f"Admin URL:   {scheme}://{host}/admin" in notes, notes


# What each pod may reach (egress) and be reached from (ingress): README "What each pod may reach".
REACH = {
    "server": ({"namespace", "controller:http"}, {"namespace", "dns:53"}),
    "postgres": ({"namespace"}, set()),
    "redis": ({"namespace"}, set()),
    "setup": ({"namespace"}, {"namespace", "dns:53"}),
    "test": ({"namespace"}, {"namespace", "dns:53"}),
}


@pytest.mark.parametrize("values", [DEFAULT_VALUES, TLS_VALUES, TRAEFIK_VALUES], ids=lambda path: path.stem)
def test_each_pod_reaches_what_it_needs_and_nothing_else(values: Path):
    objects = render(values)
    merged = store_chart.merge(yaml.safe_load((CHART / "values.yaml").read_text()), yaml.safe_load(values.read_text()))
    names = store_chart.peer_names(merged)
    pods = store_chart.every_pod(objects)
    assert set(pods) == set(REACH)
    for component, (labels, _) in pods.items():
        ingress, egress = REACH[component]
        if component == "server" and merged["networkPolicy"]["extraServerEgress"]:
            egress = egress | {"anywhere:443"}  # tls-values: the server may call a payment API
        assert store_chart.reachable(objects, labels, "ingress", names) == ingress, component
        assert store_chart.reachable(objects, labels, "egress", names) == egress, component
    assert store_chart.reachable(objects, {"run": "debug"}, "egress", names) == {"namespace", "dns:53"}


def test_scheduled_jobs_run_in_the_server_process():
    """Medusa runs its scheduled jobs and subscribers in the server when the worker mode is
    "shared": the chart says so explicitly and needs no CronJob or worker."""
    objects = render(DEFAULT_VALUES)
    server = pods_of(objects)["server"]["containers"][0]
    assert {"name": "MEDUSA_WORKER_MODE", "value": "shared"} in server["env"]
    assert not [obj for obj in objects if obj["kind"] == "CronJob"]
    config = (IMAGE_PROJECT / "medusa-config.ts").read_text()
    assert "workerMode: (process.env.MEDUSA_WORKER_MODE" in config


def test_setup_job_is_sized_from_the_measured_run():
    """The first setup was measured natively at 28.5 CPU-s and 422 MiB peak (test_medusa_native
    measures it again on every run): the memory request covers the peak, and the deadline covers,
    twice, the run at the CPU request plus the wait for Postgres."""
    setup = yaml.safe_load((CHART / "values.yaml").read_text())["setup"]
    resources = setup["resources"]
    assert parse_quantity(resources["requests"]["memory"]) >= parse_quantity("422Mi")
    assert parse_quantity(resources["limits"]["memory"]) >= parse_quantity("422Mi") * Decimal("1.5")
    at_request = Decimal("28.5") / parse_quantity(resources["requests"]["cpu"])
    assert 2 * (at_request + setup["databaseWaitSeconds"]) <= setup["activeDeadlineSeconds"]


def test_guard_rails_can_be_switched_off():
    objects = render(CHART / "ci" / "guardrails-off-values.yaml")
    kinds = {obj["kind"] for obj in objects}
    assert not kinds & {"ResourceQuota", "LimitRange", "NetworkPolicy"}, kinds
    (pod,) = [obj for obj in objects if obj["kind"] == "Pod"]
    assert pod["spec"]["containers"][0]["image"] == "docker.io/library/node:22.23.5-alpine"


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
    assert re.search(r"^ARG NODE_IMAGE=node:22\.\d+\.\d+-", dockerfile, re.M), "node:22 (LTS) pinned"
    assert re.search(r"^USER 1000:1000$", dockerfile, re.M)
    assert values["medusa"]["uid"] == 1000


# --- on the cluster ---------------------------------------------------------------------------------


# installed_store (read-only checks) and fresh_store (tests that change the store) install stores
# of this engine: tests/charts/conftest.py.
STORE_ENGINE = store_chart.Engine(CHART, DEFAULT_VALUES, SECRET_KEYS, short="medusa", id_prefix="m")


@pytest.mark.cluster
def test_install_reports_deployed_with_setup_complete(installed_store):
    workloads = store_chart.check_deployed(installed_store)
    assert len(workloads) == 3  # server, redis, postgres


@pytest.mark.cluster
def test_guard_rails_are_in_place(installed_store):
    store_chart.check_guard_rails(installed_store, policies=4)


@pytest.mark.cluster
def test_admitted_pods_are_restricted(installed_store):
    store_chart.check_pods_restricted(installed_store, {"server", "postgres", "redis", "setup"})


@pytest.mark.cluster
def test_requests_and_limits_of_every_pod_fit_the_quota(installed_store):
    """All pods of the store at once, what may start any moment (the helm test pod) as the API admits
    it, and room for one pod more."""
    store_chart.check_pods_fit_quota(installed_store, min_pods=5)


@pytest.mark.cluster
def test_every_object_of_the_store_is_labelled(installed_store):
    objects = installed_store.release_objects()
    objects += installed_store.get("pods,pvc,replicasets,controllerrevisions,jobs")
    store_chart.check_labels_and_volumes(installed_store, objects, volumes=2)  # database, media


@pytest.mark.cluster
def test_helm_test_pod_is_admitted_and_scheduled(installed_store):
    """On the simulated cluster: admission (restricted, quota) and scheduling of the order pod only."""
    store_chart.check_helm_test_passes(installed_store)


@pytest.mark.cluster
def test_upgrade_rolls_every_workload_within_the_quota(fresh_store):
    """New server, Postgres and Redis images: the server and Redis pods are replaced (Recreate),
    Postgres' in place, setup-2 migrates, and the namespace's own quota refuses nothing."""
    store_chart.check_upgrade_rolls_every_workload(
        fresh_store,
        {"medusa.image.tag": "2.21.3", "postgres.image.tag": "17.8-alpine", "redis.image.tag": "8.4.4-alpine"},
    )


@pytest.mark.cluster
def test_uninstall_and_namespace_deletion_leave_nothing(fresh_store):
    store_chart.check_teardown_leaves_nothing(fresh_store, volumes=2)  # database, media
