"""The WooCommerce chart's MariaDB, for real: its StatefulSet, Service, ServiceAccount and guardrails
exactly as the chart renders them (security context, volumes, exec probes, quota) run on the real
node with the MariaDB stand-in, and a client reaches the database by the Service name with the
store's credentials. WordPress itself cannot run here (its official image and the WooCommerce
plugin cannot be fetched); the README lists what is verified only on a real cluster."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.simcluster.helpers import namespace_gone, wait_for

from .conftest import REAL_NODE, REPO, on_real_node, restricted_container, scheduling_values

pytestmark = pytest.mark.realnode

CHART = REPO / "charts" / "woocommerce"
RELEASE = "store"
FULLNAME = "store-woocommerce"
# The chart's objects that run the database; the rest need WordPress.
DATABASE_TEMPLATES = ["templates/serviceaccount.yaml", "templates/guardrails.yaml", "templates/mariadb.yaml"]


def render_database(kube_cluster, namespace: str, mariadb_image, tmp_path: Path) -> list[dict]:
    values = {
        "store": {"id": "1", "host": "wc-db.stores.test"},
        "existingSecret": "store-secrets",
        "mariadb": {"image": mariadb_image.values()},
        **scheduling_values(),
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    show = [arg for t in DATABASE_TEMPLATES for arg in ("--show-only", t)]
    rendered = kube_cluster.run(
        kube_cluster.helm, "template", RELEASE, str(CHART), "-n", namespace, "-f", str(values_file), *show
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def pod_ready(core_api: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        pod = core_api.read_namespaced_pod(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_chart_mariadb_runs_on_the_real_node_and_serves_the_store_user(
    kube_cluster, core_api, real_namespace, node_images, tmp_path
):
    mariadb = node_images("mariadb")["mariadb"]
    namespace = real_namespace("wcdb")
    password = secrets.token_urlsafe(24)
    core_api.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "store-secrets"},
            "stringData": {"db-password": password, "db-root-password": secrets.token_urlsafe(24)},
        },
    )
    manifest = tmp_path / "database.yaml"
    objects = render_database(kube_cluster, namespace, mariadb, tmp_path)
    manifest.write_text(yaml.safe_dump_all(objects))
    assert {o["kind"] for o in objects} >= {"StatefulSet", "Service", "ResourceQuota", "LimitRange"}
    kube_cluster.run(kube_cluster.kubectl, "apply", "-n", namespace, "-f", str(manifest))

    pod_name = f"{FULLNAME}-mariadb-0"
    # The startup and readiness probes (healthcheck.sh --connect --innodb_initialized), run by kubelet.
    wait_for(lambda: pod_ready(core_api, namespace, pod_name), 300, f"{pod_name} Ready")
    pod = core_api.read_namespaced_pod(pod_name, namespace)
    assert pod.spec.node_name == REAL_NODE
    container = pod.status.container_statuses[0]
    assert container.restart_count == 0, "a probe failed and kubelet restarted MariaDB"
    assert pod.spec.containers[0].security_context.read_only_root_filesystem is True

    # A client as WordPress would be one: by the Service name, as the store's database user.
    service_host = f"{FULLNAME}-mariadb.{namespace}.svc.cluster.local"
    sql = "CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders VALUES (42); SELECT id FROM orders;"
    client_pod = on_real_node(
        {
            "restartPolicy": "Never",
            "containers": [
                restricted_container(
                    "client",
                    ["sh", "-c", f'mariadb -h {service_host} -u wordpress -p"$DB_PASSWORD" wordpress -N -e "{sql}"'],
                    image=mariadb.reference,
                    env=[
                        {
                            "name": "DB_PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "store-secrets", "key": "db-password"}},
                        }
                    ],
                )
            ],
        }
    )
    client_pod["containers"][0]["securityContext"].update(runAsUser=999, runAsGroup=999)
    core_api.create_namespaced_pod(namespace, {"metadata": {"name": "client"}, "spec": client_pod})
    wait_for(
        lambda: core_api.read_namespaced_pod("client", namespace).status.phase in ("Succeeded", "Failed"),
        120,
        "client pod to finish",
    )
    log = core_api.read_namespaced_pod_log("client", namespace)
    assert core_api.read_namespaced_pod("client", namespace).status.phase == "Succeeded", log
    assert log.split() == ["42"], log

    # The rows live on the store's volume (a hostPath PV here), written as MariaDB's uid.
    claim = core_api.read_namespaced_persistent_volume_claim(f"data-{pod_name}", namespace)
    volume = core_api.read_persistent_volume(claim.spec.volume_name)
    data_dir = Path(volume.spec.host_path.path)
    assert (data_dir / "wordpress").is_dir() and (data_dir / "wordpress").stat().st_uid == 999

    # Deleting the store's namespace leaves no volume and no directory behind.
    core_api.delete_namespace(namespace)
    wait_for(lambda: namespace_gone(core_api, namespace), 180, f"namespace {namespace} deleted")
    wait_for(lambda: not data_dir.exists(), 60, f"{data_dir} removed with its PV")
    # The provisioner removes the directory first, then the PV object: wait for that too.
    wait_for(
        lambda: (
            not [
                pv.metadata.name
                for pv in core_api.list_persistent_volume().items
                if pv.spec.claim_ref and pv.spec.claim_ref.namespace == namespace
            ]
        ),
        60,
        f"the PVs of {namespace} deleted",
    )
