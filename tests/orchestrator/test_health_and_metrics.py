"""Probes and Prometheus metrics as operators and Kubernetes see them."""

import base64
import io
import os
import re
import time

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from stores_app import audit, metrics
from stores_app.models import AuditEntry, Store
from tests.conftest import login_client


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


METRICS_TOKEN = "scrape-token-for-tests"


@pytest.fixture
def scraper(client, settings):
    """A Prometheus-like client: the configured token as a bearer."""
    settings.METRICS_TOKEN = METRICS_TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {METRICS_TOKEN}"
    return client


@pytest.mark.django_db
def test_store_metrics(scraper, owner):
    ready = Store.objects.create(owner=owner, name="Quick Shop", slug="quick-shop", engine="medusa", status="ready")
    Store.objects.filter(pk=ready.pk).update(ready_at=ready.created_at + timezone.timedelta(seconds=90))
    failed = Store.objects.create(owner=owner, name="Sad Shop", slug="sad-shop", engine="woocommerce", status="failed")
    audit.record(AuditEntry.Action.STORE_FAILED, outcome="failed", store=failed, actor_name="system", reason="timeout")
    body = scraper.get("/metrics").content.decode()
    assert 'store_orchestrator_stores{engine="medusa",state="ready"} 1.0' in body
    assert 'store_orchestrator_store_failures{engine="woocommerce",reason="timeout"} 1.0' in body
    assert 'store_orchestrator_provisioning_seconds_bucket{engine="medusa",le="60.0"} 0.0' in body
    assert 'store_orchestrator_provisioning_seconds_bucket{engine="medusa",le="120.0"} 1.0' in body


@pytest.mark.django_db
def test_metrics_answer_only_the_token_and_staff(client, owner, staff, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert b"store_orchestrator" not in anonymous.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").status_code == 200
    basic = base64.b64encode(f"prometheus:{METRICS_TOKEN}".encode()).decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {basic}").status_code == 200
    assert login_client(owner).get("/metrics").status_code == 401  # signed in, but not staff
    assert login_client(staff).get("/metrics").status_code == 200
    settings.METRICS_TOKEN = ""  # no token configured: an empty bearer must not match it
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert login_client(staff).get("/metrics").status_code == 200


@pytest.mark.django_db
def test_guessing_the_metrics_token_is_limited_like_a_password(client, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    settings.RATELIMIT_LOGIN = "3/15m"
    codes = [client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer guess-{i}").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    # The scraper with the right token is never counted or refused.
    ok = [client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").status_code for _ in range(5)]
    assert ok == [200] * 5


@pytest.mark.django_db
def test_scrapes_reuse_the_store_figures_for_a_few_seconds(scraper, owner, settings):
    settings.METRICS_CACHE_SECONDS = 60
    Store.objects.create(owner=owner, name="Counted Shop", slug="counted-shop", engine="medusa", status="ready")
    with CaptureQueriesContext(connection) as first:
        body = scraper.get("/metrics").content.decode()
    assert 'store_orchestrator_stores{engine="medusa",state="ready"} 1.0' in body
    assert len(first) >= 3  # one query per family
    Store.objects.create(owner=owner, name="Later Shop", slug="later-shop", engine="medusa", status="ready")
    with CaptureQueriesContext(connection) as second:
        body = scraper.get("/metrics").content.decode()
    assert len(second) == 0, [q["sql"] for q in second.captured_queries]
    assert 'store_orchestrator_stores{engine="medusa",state="ready"} 1.0' in body  # the cached figure
    cache.delete(metrics.CACHE_KEY)  # what expiry does
    assert 'state="ready"} 2.0' in scraper.get("/metrics").content.decode()


@pytest.mark.django_db
def test_metrics_still_answer_while_redis_is_down(scraper, owner, settings):
    Store.objects.create(owner=owner, name="Lonely Shop", slug="lonely-shop", engine="woocommerce", status="failed")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert 'store_orchestrator_stores{engine="woocommerce",state="failed"} 1.0' in response.content.decode()


def _worker_health(*args) -> tuple[int, str]:
    """The probe's command in this process (the real probe runs it in a subprocess: same code)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("worker_health", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code), err.getvalue()
    return 0, out.getvalue()


def test_worker_health_heartbeat_missing_fresh_and_stale(tmp_path, settings):
    settings.WORKER_HEARTBEAT_FILE = str(tmp_path / "hb")
    code, message = _worker_health()
    assert code == 1 and "has not started" in message
    (tmp_path / "hb").touch()
    assert _worker_health() == (0, "Worker alive and no command hung.\n")
    # Alive but stuck: the main process stopped touching the file two minutes ago (limit 30 s).
    stale = time.time() - 120
    os.utime(tmp_path / "hb", (stale, stale))
    code, message = _worker_health()
    assert code == 1 and re.search(r"Heartbeat is 1[12]\ds old \(limit 30s\): the worker is stuck", message)
    assert _worker_health("--max-age", "600")[0] == 0
