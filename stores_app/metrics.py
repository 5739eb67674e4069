"""Prometheus metrics about stores, read from the database at scrape time.

Workers and web run in separate processes (and pods), so in-process counters
would each see a slice; the database sees everything, and one query per family
keeps a scrape cheap whatever the number of stores.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from .models import AuditEntry, Store

BUCKETS = [30, 60, 120, 180, 300, 600, 900, 1800]


class StoreCollector:
    def describe(self):
        # Lets the registry learn the names without querying the database at import time.
        yield GaugeMetricFamily("store_orchestrator_stores", "", labels=["state", "engine"])
        yield GaugeMetricFamily("store_orchestrator_store_failures", "", labels=["engine", "reason"])
        yield HistogramMetricFamily("store_orchestrator_provisioning_seconds", "", labels=["engine"])

    def collect(self):
        by_state = GaugeMetricFamily(
            "store_orchestrator_stores", "Stores by state and engine", labels=["state", "engine"]
        )
        rows = Store.objects.values("status", "engine").order_by().annotate(n=Count("id"))
        for row in rows:
            by_state.add_metric([row["status"], row["engine"]], row["n"])
        yield by_state

        failures = GaugeMetricFamily(
            "store_orchestrator_store_failures",
            "Store failures recorded, by engine and reason",
            labels=["engine", "reason"],
        )
        rows = (
            AuditEntry.objects.filter(action=AuditEntry.Action.STORE_FAILED)
            .values("store__engine", reason=KeyTextTransform("reason", "details"))
            .order_by()
            .annotate(n=Count("id"))
        )
        for row in rows:
            failures.add_metric([row["store__engine"] or "", row["reason"] or "unknown"], row["n"])
        yield failures

        yield self._provisioning_histogram()

    def _provisioning_histogram(self):
        hist = HistogramMetricFamily(
            "store_orchestrator_provisioning_seconds",
            "Seconds from request to ready, per engine",
            labels=["engine"],
        )
        cases = ", ".join(f"COUNT(*) FILTER (WHERE d <= {b})" for b in BUCKETS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT engine, {cases}, COUNT(*), COALESCE(SUM(d), 0) FROM ("  # noqa: S608 (no user input)
                f"  SELECT engine, EXTRACT(EPOCH FROM ready_at - created_at) AS d FROM {Store._meta.db_table}"
                "   WHERE ready_at IS NOT NULL) t GROUP BY engine"
            )
            for row in cursor.fetchall():
                engine, counts, total, total_sum = row[0], row[1:-2], row[-2], row[-1]
                buckets = [(str(float(b)), c) for b, c in zip(BUCKETS, counts, strict=True)] + [("+Inf", total)]
                hist.add_metric([engine], buckets, float(total_sum))
        return hist
