"""What many live stores cost the orchestrator's recurring work: the reconciler's pass and the lists people
read, measured with the fleet's stores really running in the cluster: once a checkpoint's number of them
are ready (while the rest are still being provisioned, so under that load) and again with all of them
up, so the two can be compared.

- Reconciler pass: the beat task's body (`stores_app.tasks.reconcile_stores`), run in this process; it
  reads every active and watched store and lists the managed namespaces in the cluster. This process's
  broker is the sink, so anything it would queue goes nowhere.
- API: GET /api/stores/ (first page) and GET /api/stores/{id}/ over HTTP as a staff user, who sees every
  store.
- Dashboard: the store list page, rendered in-process by Django's test client for the same staff user.
"""

from __future__ import annotations

import statistics
import time

import requests

from .stats import summary

REPEAT_RECONCILE = 3


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _checked(session: requests.Session, url: str) -> None:
    response = session.get(url, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: HTTP {response.status_code} {response.text[:200]}")


def measure(web_url: str, staff_token: str, staff_user, store_ids: list[int], requests_count: int = 40) -> dict:
    """The live-store figures at this moment (milliseconds)."""
    from django.db import connection
    from django.test import Client

    from stores_app.models import Store
    from stores_app.tasks import reconcile_stores

    live = Store.objects.live().count()
    ready = Store.objects.filter(status="ready").count()
    passes = [_ms(reconcile_stores) for _ in range(REPEAT_RECONCILE)]
    session = requests.Session()
    session.headers["Authorization"] = f"Token {staff_token}"
    listing_url = f"{web_url}/api/stores/"
    _checked(session, listing_url)  # warm-up
    listing = [_ms(lambda: _checked(session, listing_url)) for _ in range(requests_count)]
    ids = store_ids or [0]
    detail = [_ms(lambda i=i: _checked(session, f"{listing_url}{ids[i % len(ids)]}/")) for i in range(requests_count)]
    browser = Client(HTTP_HOST="localhost")
    browser.force_login(staff_user)

    def dashboard() -> None:
        response = browser.get("/")
        if response.status_code != 200:
            raise RuntimeError(f"GET / (dashboard): HTTP {response.status_code}")

    dashboard()
    pages = [_ms(dashboard) for _ in range(max(5, requests_count // 4))]
    connection.close()
    return {
        "live_stores": live,
        "ready_stores": ready,
        "reconcile_pass_ms": {
            "median": round(statistics.median(passes), 1),
            "max": round(max(passes), 1),
            "passes": len(passes),
        },
        "api_list_ms": summary(listing),
        "api_detail_ms": summary(detail),
        "dashboard_list_ms": summary(pages),
    }
