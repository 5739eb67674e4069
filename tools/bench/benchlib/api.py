"""API latency with many stores in the database, and SQL queries per request.

Latency is measured over real HTTP against a gunicorn whose broker is a Redis database no worker
consumes: POST /api/stores/ does all its work (validation, quota check under a row lock, insert,
event, audit entry, enqueue on commit) but nothing gets provisioned. The stores listed are rows
inserted directly. Query counts are taken in-process with Django's test Client and
CaptureQueriesContext for a user with 10 stores and one with `api_stores`.
"""

from __future__ import annotations

import time

import requests

from .stats import summary


def insert_stores(user, count: int, prefix: str) -> list[int]:
    """`count` ready stores for `user`, written straight to the database (no cluster objects)."""
    from django.utils import timezone

    from stores_app.models import Store
    from stores_app.naming import namespace_for, release_for

    now = timezone.now()
    rows = []
    for i in range(count):
        slug = f"{prefix}-{i}"
        rows.append(
            Store(
                owner=user,
                name=slug,
                slug=slug,
                engine="woocommerce" if i % 2 == 0 else "medusa",
                status="ready",
                status_message="Ready",
                ready_at=now,
                provisioning_started_at=now,
            )
        )
    created = Store.objects.bulk_create(rows, batch_size=500)
    for store in created:
        store.namespace = namespace_for(store.pk, store.slug)
        store.release_name = release_for(store.pk, store.slug)
        store.helm_revision = 1
    Store.objects.bulk_update(created, ["namespace", "release_name", "helm_revision"], batch_size=500)
    return [s.pk for s in created]


def _timed(session: requests.Session, method: str, url: str, expect: int, **kwargs) -> float:
    start = time.perf_counter()
    response = session.request(method, url, timeout=30, **kwargs)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != expect:
        raise RuntimeError(f"{method} {url}: HTTP {response.status_code} {response.text[:300]}")
    return elapsed


def latency(web_url: str, token: str, requests_count: int, name_prefix: str) -> dict:
    """p50/p99 of GET /api/stores/ (default page) and POST /api/stores/, sequential, after a warm-up."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    url = f"{web_url}/api/stores/"
    for _ in range(20):  # warm-up: every gunicorn worker and thread has its connections and imports
        _timed(session, "GET", url, 200)
    listing = [_timed(session, "GET", url, 200) for _ in range(requests_count)]
    page = session.get(url, timeout=30).json()
    big_page = [_timed(session, "GET", url, 200, params={"limit": 1000}) for _ in range(max(10, requests_count // 10))]
    creates = []
    for i in range(requests_count):
        body = {"name": f"{name_prefix} {i}", "engine": "woocommerce" if i % 2 == 0 else "medusa"}
        creates.append(_timed(session, "POST", url, 202, json=body))
    return {
        "list": {**summary(listing), "unit": "ms", "page_size": len(page.get("results", [])), "total": page["count"]},
        "list_limit_1000": {**summary(big_page), "unit": "ms"},
        "create": {**summary(creates), "unit": "ms"},
    }


def query_counts(small_user, big_user, small_count: int, big_count: int, name_prefix: str) -> dict:
    """SQL queries per GET and POST /api/stores/ for a user with few stores and one with many."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from knox.models import AuthToken

    out = {}
    for label, user, count in (("small", small_user, small_count), ("large", big_user, big_count)):
        _, token = AuthToken.objects.create(user=user)
        client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="localhost")
        client.get("/api/stores/")  # warm-up (content types, first connection)
        with CaptureQueriesContext(connection) as listed:
            response = client.get("/api/stores/")
        assert response.status_code == 200, response.content[:300]
        with CaptureQueriesContext(connection) as created:
            response = client.post(
                "/api/stores/",
                {"name": f"{name_prefix} {label}", "engine": "woocommerce"},
                content_type="application/json",
            )
        assert response.status_code == 202, response.content[:300]
        out[label] = {"stores": count, "list_queries": len(listed), "create_queries": len(created)}
    out["list_queries_grow"] = out["large"]["list_queries"] > out["small"]["list_queries"]
    out["create_queries_grow"] = out["large"]["create_queries"] > out["small"]["create_queries"]
    return out


def profile_requests(user, out_dir, count: int, name_prefix: str) -> dict:
    """Run GET and POST /api/stores/ in-process under pyinstrument; write text and HTML profiles."""
    from django.test import Client
    from knox.models import AuthToken
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer

    _, token = AuthToken.objects.create(user=user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="localhost")
    client.get("/api/stores/")
    out_dir.mkdir(parents=True, exist_ok=True)
    calls = {
        "api_list": lambda i: client.get("/api/stores/"),
        "api_create": lambda i: client.post(
            "/api/stores/", {"name": f"{name_prefix} {i}", "engine": "woocommerce"}, content_type="application/json"
        ),
    }
    out = {}
    for name, call in calls.items():
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        for i in range(count):
            call(i)
        session = profiler.stop()
        text = ConsoleRenderer(unicode=True, color=False, short_mode=True, time="seconds").render(session)
        (out_dir / f"{name}.txt").write_text(text)
        (out_dir / f"{name}.html").write_text(HTMLRenderer().render(session))
        out[name] = {
            "requests": count,
            "ms_per_request": round(session.duration * 1000 / count, 2),
            "text": str(out_dir / f"{name}.txt"),
        }
    return out
