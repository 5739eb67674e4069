"""Prometheus metrics: the protected /metrics endpoint and the store figures, read from the database.

Workers and web run in separate processes (and pods), so in-process counters would each see a
slice; the database sees everything. One query per family, and the results are shared through the
cache for METRICS_CACHE_SECONDS, so any number of scrapers and web pods cost the database one set of
queries per interval. Only a scraper with METRICS_TOKEN, or signed-in staff, may read them: the
figures say how many stores each engine has and why they fail.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError

from . import ratelimits
from .models import AuditEntry, Store

log = logging.getLogger(__name__)

BUCKETS = [30, 60, 120, 180, 300, 600, 900, 1800]
CACHE_KEY = "metrics:store-aggregates"


@require_GET
@never_cache
def metrics_view(request):
    """The Prometheus exposition, for the metrics token or staff; a wrong token counts like a wrong password."""
    if _may_scrape(request):
        return ExportToDjangoView(request)
    wait = ratelimits.check(request, "login")
    if wait is not None:
        return ratelimits.too_many_requests(request, wait)
    response = HttpResponse(
        "Metrics need `Authorization: Bearer <METRICS_TOKEN>` (or HTTP Basic with it as the password), "
        "or a staff login.\n",
        status=401,
        content_type="text/plain",
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def _may_scrape(request) -> bool:
    token = settings.METRICS_TOKEN
    offered = _offered_token(request.META.get("HTTP_AUTHORIZATION", ""))
    if token and offered is not None and hmac.compare_digest(offered.encode(), token.encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def _offered_token(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]  # any user name; the password is the token
    return None


def store_aggregates() -> dict[str, list[tuple]]:
    """The rows behind the three families, from the cache while fresh, else from the database."""
    ttl = settings.METRICS_CACHE_SECONDS
    try:
        rows = cache.get(CACHE_KEY) if ttl > 0 else None
    except RedisError:
        rows = None  # metrics still answer while Redis is down, at the price of the queries
    if rows is None:
        rows = {"stores": _stores_by_state(), "failures": _failures(), "provisioning": _provisioning_times()}
        if ttl > 0:
            try:
                cache.set(CACHE_KEY, rows, ttl)
            except RedisError:
                log.warning("metrics: could not cache the store aggregates; Redis is unreachable")
    return rows


def _stores_by_state() -> list[tuple]:
    rows = Store.objects.values("status", "engine").order_by().annotate(n=Count("id"))
    return [(row["status"], row["engine"], row["n"]) for row in rows]


def _failures() -> list[tuple]:
    rows = (
        AuditEntry.objects.filter(action=AuditEntry.Action.STORE_FAILED)
        .values("store__engine", reason=KeyTextTransform("reason", "details"))
        .order_by()
        .annotate(n=Count("id"))
    )
    return [(row["store__engine"] or "", row["reason"] or "unknown", row["n"]) for row in rows]


def _provisioning_times() -> list[tuple]:
    """(engine, [count ≤ bucket…], total, sum of seconds) per engine."""
    cases = ", ".join(f"COUNT(*) FILTER (WHERE d <= {b})" for b in BUCKETS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT engine, {cases}, COUNT(*), COALESCE(SUM(d), 0) FROM ("  # noqa: S608 (no user input)
            f"  SELECT engine, EXTRACT(EPOCH FROM ready_at - created_at) AS d FROM {Store._meta.db_table}"
            "   WHERE ready_at IS NOT NULL) t GROUP BY engine"
        )
        return [(row[0], list(row[1:-2]), row[-2], float(row[-1])) for row in cursor.fetchall()]


class StoreCollector:
    def describe(self):
        # Lets the registry learn the names without querying the database at import time.
        yield GaugeMetricFamily("store_orchestrator_stores", "", labels=["state", "engine"])
        yield GaugeMetricFamily("store_orchestrator_store_failures", "", labels=["engine", "reason"])
        yield HistogramMetricFamily("store_orchestrator_provisioning_seconds", "", labels=["engine"])

    def collect(self):
        rows = store_aggregates()
        by_state = GaugeMetricFamily(
            "store_orchestrator_stores", "Stores by state and engine", labels=["state", "engine"]
        )
        for status, engine, n in rows["stores"]:
            by_state.add_metric([status, engine], n)
        yield by_state

        failures = GaugeMetricFamily(
            "store_orchestrator_store_failures",
            "Store failures recorded, by engine and reason",
            labels=["engine", "reason"],
        )
        for engine, reason, n in rows["failures"]:
            failures.add_metric([engine, reason], n)
        yield failures

        hist = HistogramMetricFamily(
            "store_orchestrator_provisioning_seconds",
            "Seconds from request to ready, per engine",
            labels=["engine"],
        )
        for engine, counts, total, total_sum in rows["provisioning"]:
            buckets = [(str(float(b)), c) for b, c in zip(BUCKETS, counts, strict=True)] + [("+Inf", total)]
            hist.add_metric([engine], buckets, total_sum)
        yield hist
