"""values.yaml is for kind: no registry (the image is loaded into the cluster), no real domain, no
TLS, and Postgres/Redis bundled with credentials generated into a Secret, not written in values."""

from __future__ import annotations

import pytest
import yaml

from .conftest import LOCAL_VALUES, PROD_VALUES, containers, env_of, named, of_kind, pod_specs

ORCHESTRATOR_COMPONENTS = ("web", "worker", "beat", "migrate")


def test_orchestrator_image_needs_no_registry(local_objects):
    for where, spec in pod_specs(local_objects).items():
        for container in containers(spec):
            image = container["image"]
            if not image.startswith("store-orchestrator:"):
                continue  # the official postgres/redis images are pulled from Docker Hub as usual
            first = image.split("/")[0]
            assert "/" not in image or not ("." in first or ":" in first or first == "localhost"), where
            assert container["imagePullPolicy"] == "IfNotPresent", where
    orchestrator_pods = [w for w in pod_specs(local_objects) if w.endswith(ORCHESTRATOR_COMPONENTS)]
    assert len(orchestrator_pods) == 4


def test_no_real_domain_and_no_tls(local_objects):
    ingress = named(local_objects, "Ingress", "store-orchestrator")
    assert ingress["spec"]["rules"][0]["host"].endswith(".localhost")
    assert "tls" not in ingress["spec"]
    assert "cert-manager.io/cluster-issuer" not in (ingress["metadata"].get("annotations") or {})
    env = env_of(named(local_objects, "Deployment", "-web")["spec"]["template"]["spec"]["containers"][0])
    assert env["STORE_BASE_DOMAIN"]["value"].endswith(".localhost")
    assert env["STORE_TLS_CLUSTER_ISSUER"]["value"] == ""
    assert env["STORE_URL_SCHEME"]["value"] == "http"


def test_bundled_postgres_keeps_its_data_on_a_volume(local_objects):
    postgres = named(local_objects, "StatefulSet", "-postgres")
    [claim] = postgres["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster's default StorageClass
    assert postgres["spec"]["template"]["spec"]["containers"][0]["image"].startswith("postgres:17.")


def test_bundled_redis_keeps_queued_tasks_on_a_volume(local_objects, render):
    """Tasks live in Redis: an append-only file on a claim survives a restart of the pod."""
    redis = named(local_objects, "StatefulSet", "-redis")
    [claim] = redis["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data" and claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    container = redis["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes" and args[args.index("--appendfsync") + 1] == "everysec"
    assert args[args.index("--dir") + 1] == "/data"
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    assert redis["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 999  # the redis user may write it
    # Without persistence: an emptyDir and no append-only file, as before.
    ephemeral = named(render(LOCAL_VALUES, sets=["redis.persistence.enabled=false"]), "StatefulSet", "-redis")
    assert "volumeClaimTemplates" not in ephemeral["spec"]
    assert [v["name"] for v in ephemeral["spec"]["template"]["spec"]["volumes"]] == ["data"]
    args = ephemeral["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "no"


def test_generated_credentials_are_random_and_survive_uninstall(render):
    first, second = (named(render(LOCAL_VALUES), "Secret", "-generated") for _ in range(2))
    assert set(first["data"]) == {"django-secret-key", "postgres-password", "redis-password", "metrics-token"}
    assert first["data"] != second["data"], "fresh random values when there is no Secret to look up"
    assert first["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def _leaves(tree, path=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path, tree


@pytest.mark.parametrize("values_file", [LOCAL_VALUES, PROD_VALUES], ids=lambda p: p.name)
def test_values_files_hold_no_credentials(values_file):
    values = yaml.safe_load(values_file.read_text())
    for path, value in _leaves(values):
        name = path[-1].lower()
        if isinstance(value, str) and ("password" in name or "token" in name or name == "secretkey"):
            # Only names of Secrets and of keys in them, e.g. existingSecretPasswordKey.
            assert name.endswith(("key", "secret")), ".".join(path)
    assert set(values["secrets"]) <= {"existingSecret", "secretKeyKey"}


def test_migrations_run_after_install_when_postgres_is_bundled(local_objects):
    # The bundled Postgres only exists once the release's resources do.
    job = named(local_objects, "Job", "-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["initContainers"][0]["name"] == "wait-for-postgres"


def test_one_beat_replaced_with_recreate(local_objects, prod_objects):
    for objects in (local_objects, prod_objects):
        beat = named(objects, "Deployment", "-beat")
        assert beat["spec"]["replicas"] == 1
        assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert not [h for h in of_kind(prod_objects, "HorizontalPodAutoscaler") if "beat" in h["metadata"]["name"]]
