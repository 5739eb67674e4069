"""values-prod.yaml renders what a k3s VPS needs: TLS through cert-manager, HPAs for web and the
worker, and the external Postgres/Redis from existing Secrets instead of bundled ones."""

from __future__ import annotations

import yaml

from .conftest import containers, env_of, named, of_kind, pod_specs


def test_ingress_serves_tls_from_cert_manager(prod_objects):
    ingress = named(prod_objects, "Ingress", "store-orchestrator")
    host = ingress["spec"]["rules"][0]["host"]
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": "so-store-orchestrator-tls"}]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert not host.endswith(".localhost")


def test_stores_get_certificates_and_https_urls(prod_objects):
    env = env_of(named(prod_objects, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0])
    assert env["STORE_TLS_CLUSTER_ISSUER"]["value"] == "letsencrypt-prod"
    assert env["STORE_URL_SCHEME"]["value"] == "https"
    assert env["SECURE_COOKIES"]["value"] == "true"
    assert env["DJANGO_CSRF_TRUSTED_ORIGINS"]["value"].startswith("https://")


def test_web_and_worker_autoscale_from_two_to_five_at_70_percent_cpu(prod_objects):
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(prod_objects, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"so-store-orchestrator-web", "so-store-orchestrator-worker"}
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    for name in hpas:
        # A fixed replica count would fight the HPA on every upgrade.
        deployment = next(d for d in of_kind(prod_objects, "Deployment") if d["metadata"]["name"] == name)
        assert "replicas" not in deployment["spec"]


def test_no_bundled_postgres_or_redis(prod_objects):
    assert of_kind(prod_objects, "StatefulSet") == []
    assert of_kind(prod_objects, "PersistentVolumeClaim") == []
    names = [o["metadata"]["name"] for o in prod_objects]
    assert not [n for n in names if n.endswith(("-postgres", "-redis"))]
    # Every credential comes from the operator's Secret: the chart makes none.
    assert of_kind(prod_objects, "Secret") == []


def test_database_and_redis_settings_come_from_values_and_existing_secrets(prod_objects):
    for where, spec in pod_specs(prod_objects).items():
        for container in containers(spec):
            env = env_of(container)
            if "DJANGO_SECRET_KEY" not in env:
                continue  # the wait-for-postgres init container needs host and port only
            assert env["POSTGRES_HOST"]["value"] == "postgres.example.internal", where
            assert env["POSTGRES_DB"]["value"] == "orchestrator"
            assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
                "name": "store-orchestrator-secrets",
                "key": "postgres-password",
            }
            assert env["REDIS_HOST"]["value"] == "redis.example.internal"
            assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "store-orchestrator-secrets"
            assert env["DJANGO_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {
                "name": "store-orchestrator-secrets",
                "key": "django-secret-key",
            }
            assert env["DJANGO_DEVELOPMENT"]["value"] == "false"
            assert not any("value" in e and "PASSWORD" in name for name, e in env.items())


def test_migrations_run_before_install_when_the_database_is_external(prod_objects):
    job = named(prod_objects, "Job", "-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_production_image_is_pinned_and_from_a_registry(prod_objects):
    for spec in pod_specs(prod_objects).values():
        for container in containers(spec):
            repository, _, tag = container["image"].rpartition(":")
            assert "." in repository.split("/")[0], container["image"]
            assert tag and tag != "latest"


def test_medusa_stores_get_their_image_from_the_registry(prod_objects):
    [config] = [c for c in of_kind(prod_objects, "ConfigMap") if c["metadata"]["name"].endswith("-engine-values")]
    medusa = yaml.safe_load(config["data"]["medusa.yaml"])
    assert medusa["medusa"]["image"]["repository"].startswith("registry.example.com/")
    for component in ("-web", "-worker", "-beat"):
        spec = named(prod_objects, "Deployment", component)["spec"]["template"]["spec"]
        env = env_of(spec["containers"][0])
        assert env["STORE_MEDUSA_VALUES"]["value"] == "/etc/store-orchestrator/engine-values/medusa.yaml"
        assert {"name": "engine-values", "configMap": {"name": config["metadata"]["name"]}} in spec["volumes"]
    # Not in the migrations Job: as a pre-install hook it runs before the ConfigMap exists.
    job = named(prod_objects, "Job", "-migrate")["spec"]["template"]["spec"]
    assert "STORE_MEDUSA_VALUES" not in env_of(job["containers"][0])
