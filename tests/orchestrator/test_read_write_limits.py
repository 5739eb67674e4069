"""Reads and writes draw from separate per-user buckets, both enforced with the defaults: a dashboard
left open for a whole window (the store list reloading, store pages polling their progress, at the
intervals the pages themselves use) is never throttled, while writes are still cut off after 100 per
15 minutes, and using up one bucket leaves the other alone."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from stores_app import ratelimits
from stores_app.models import Store
from tests.conftest import REPO, token_client

pytestmark = pytest.mark.django_db

WINDOW_SECONDS = 15 * 60


def polling_intervals() -> tuple[float, float]:
    """(list poll, progress poll) in seconds: the fastest the pages poll (while a store is changing), read
    from the fragments the pages render, so a faster poll fails this test."""
    rows = (REPO / "templates" / "stores" / "_store_rows.html").read_text()
    progress = (REPO / "templates" / "stores" / "_progress.html").read_text()
    assert 'hx-trigger="every {{ poll_seconds }}s"' in rows and 'hx-trigger="every {{ poll_seconds }}s"' in progress
    fastest = min(django_settings.DASHBOARD_POLL_SECONDS, django_settings.DASHBOARD_HEALTH_POLL_SECONDS)
    return fastest, fastest


def window_of_polling(stores: list[Store], tabs_per_store: int = 1) -> list[str]:
    """The GETs an open dashboard makes in one rate-limit window: the list, and each store's page."""
    list_every, poll_every = polling_intervals()
    paths = ["/"] * int(WINDOW_SECONDS / list_every)
    for store in stores:
        paths += [f"/stores/{store.pk}/progress"] * int(WINDOW_SECONDS / poll_every) * tabs_per_store
    return paths


def make_store(owner, name: str) -> Store:
    return Store.objects.create(owner=owner, name=name, slug=name.lower().replace(" ", "-"), engine="medusa")


def test_defaults_are_the_products_write_limit_and_a_larger_read_limit():
    assert django_settings.RATELIMIT_WRITE == "100/15m"
    reads, period = django_settings.RATELIMIT_READ.split("/")
    assert period == "15m" and int(reads) > 100


def test_a_dashboard_left_open_is_never_throttled_and_writes_still_are(owner, owner_client, rf):
    """The list page plus three store pages open for 15 minutes, then 101 writes: only the last is refused."""
    stores = [make_store(owner, f"Shop {n}") for n in ("One", "Two", "Three")]
    paths = window_of_polling(stores)
    assert len(paths) > 100  # the old shared 100/15 min budget would have throttled this dashboard
    # All but the window's last round of polls are counted straight into the owner's read bucket
    # (rendering two thousand pages would cost a minute of CI); the last round goes through the real pages.
    last_round = ["/"] + [f"/stores/{store.pk}/progress" for store in stores]
    for _ in paths[: len(paths) - len(last_round)]:
        request = rf.get("/")
        request.user = owner
        assert ratelimits.check(request, "read") is None
    assert [owner_client.get(path).status_code for path in last_round] == [200] * len(last_round)

    # Writes are a bucket of their own, still at the product's 100 per 15 minutes: a retry of a store
    # that is not failed is a cheap write (it changes nothing and says why).
    owner_client.get("/")  # the CSRF cookie, as a browser has it
    token = owner_client.cookies["csrftoken"].value
    retry = f"/stores/{stores[0].pk}/retry"
    codes = [owner_client.post(retry, HTTP_X_CSRFTOKEN=token).status_code for _ in range(101)]
    assert codes == [302] * 100 + [429]
    assert owner_client.get("/").status_code == 200  # and reading goes on


def test_using_up_reads_leaves_writes_and_the_reverse(owner, settings):
    settings.RATELIMIT_READ = "3/15m"
    settings.RATELIMIT_WRITE = "2/15m"
    api = token_client(owner)
    assert [api.get("/api/stores/").status_code for _ in range(4)] == [200, 200, 200, 429]
    store = make_store(owner, "Busy Shop")
    # retry of a pending store: 409, a write that was counted and changed nothing
    assert [api.post(f"/api/stores/{store.pk}/retry/").status_code for _ in range(3)] == [409, 409, 429]
    store.refresh_from_db()
    assert store.status == "pending"


def test_polling_progress_counts_as_reading(owner, owner_client, settings):
    """The progress fragment was not limited at all before; now it draws from the read bucket."""
    settings.RATELIMIT_READ = "2/15m"
    store = make_store(owner, "Polled Shop")
    codes = [owner_client.get(f"/stores/{store.pk}/progress").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
