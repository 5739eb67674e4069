"""Probes and Prometheus metrics as operators and Kubernetes see them."""

import os
import subprocess
import sys

import pytest
from django.utils import timezone

from stores_app import audit
from stores_app.models import AuditEntry, Store


@pytest.mark.django_db
def test_liveness_and_readiness(client):
    assert client.get("/healthz/live").json() == {"status": "ok"}
    ready = client.get("/healthz/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readiness_fails_when_redis_is_unreachable(client, settings):
    # Django resets its cache connections when CACHES changes: this is a real unreachable Redis.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")


@pytest.mark.django_db
def test_store_metrics(client, owner):
    ready = Store.objects.create(owner=owner, name="Quick Shop", slug="quick-shop", engine="medusa", status="ready")
    Store.objects.filter(pk=ready.pk).update(ready_at=ready.created_at + timezone.timedelta(seconds=90))
    failed = Store.objects.create(owner=owner, name="Sad Shop", slug="sad-shop", engine="woocommerce", status="failed")
    audit.record(AuditEntry.Action.STORE_FAILED, outcome="failed", store=failed, actor_name="system", reason="timeout")
    body = client.get("/metrics").content.decode()
    assert 'store_orchestrator_stores{engine="medusa",state="ready"} 1.0' in body
    assert 'store_orchestrator_store_failures{engine="woocommerce",reason="timeout"} 1.0' in body
    assert 'store_orchestrator_provisioning_seconds_bucket{engine="medusa",le="60.0"} 0.0' in body
    assert 'store_orchestrator_provisioning_seconds_bucket{engine="medusa",le="120.0"} 1.0' in body


def test_worker_health_command(tmp_path, monkeypatch):
    heartbeat = tmp_path / "hb"
    env = {"WORKER_HEARTBEAT_FILE": str(heartbeat), "DJANGO_SETTINGS_MODULE": "orchestrator.settings"}

    def run():
        return subprocess.run(
            [sys.executable, "manage.py", "worker_health"], env={**os.environ, **env}, capture_output=True, text=True
        )

    assert run().returncode == 1
    heartbeat.touch()
    assert run().returncode == 0
