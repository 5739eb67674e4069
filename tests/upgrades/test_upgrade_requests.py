"""Who may upgrade, pin and roll out, and what a bad request gets, through the API and the dashboard
(no cluster: the worker is not needed to judge a request).

Owners upgrade and pin their own stores; another user's store is a 404, for staff too where the
owner alone decides (pinning). Rollouts and the fleet's versions are staff's: owners get 403 from the
API and are sent to the admin login by the dashboard, and nothing is recorded. A bad request says what
was wrong and changes nothing; only a ready store that is behind may start an upgrade; one open
rollout per engine."""

from __future__ import annotations

import pytest

from stores_app import services
from stores_app.models import AuditEntry, Rollout, RolloutItem, Status, Store, StoreEvent, StoreUpgrade
from stores_app.naming import namespace_for, release_for
from tests.conftest import csrf_post

from .versions import OLD_VERSION

pytestmark = pytest.mark.django_db
BEHIND = "0.0.1"


def make_store(owner, name, status=Status.READY, chart_version=BEHIND, **extra) -> Store:
    store = Store.objects.create(
        owner=owner, name=name, slug=name.lower().replace(" ", "-"), engine="woocommerce", status=status,
        chart_version=chart_version, helm_revision=1, **extra,
    )  # fmt: skip
    store.namespace, store.release_name = namespace_for(store.pk, store.slug), release_for(store.pk, store.slug)
    store.save()
    return store


@pytest.fixture
def store(owner):
    return make_store(owner, "Corner Shop")


def snapshot(store) -> tuple:
    store.refresh_from_db()
    return (store.status, store.upgrades_pinned, StoreUpgrade.objects.count(), store.events.count(),
            AuditEntry.objects.count(), Rollout.objects.count())  # fmt: skip


def test_the_api_shows_versions_and_what_an_upgrade_would_install(store, owner_api):
    data = owner_api.get(f"/api/stores/{store.pk}/").json()
    assert (data["chart_version"], data["target_version"], data["update_available"]) == (BEHIND, OLD_VERSION, True)
    current = make_store(store.owner, "Up To Date", chart_version=OLD_VERSION)
    assert owner_api.get(f"/api/stores/{current.pk}/").json()["update_available"] is False


def test_owner_upgrades_their_store_and_it_is_recorded(store, owner, owner_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = owner_api.post(f"/api/stores/{store.pk}/upgrade/")
    assert response.status_code == 202, response.content
    assert (response.json()["from_version"], response.json()["to_version"]) == (BEHIND, OLD_VERSION)
    store.refresh_from_db()
    assert store.status == Status.UPGRADING and len(queued) == 1
    assert StoreUpgrade.objects.get(store=store).state == StoreUpgrade.State.UPGRADING
    entry = AuditEntry.objects.get(action="store.upgrade")
    assert (entry.actor, entry.details["to_version"]) == (owner, OLD_VERSION)
    # Asked again while it runs: refused, nothing more recorded.
    before = snapshot(store)
    again = owner_api.post(f"/api/stores/{store.pk}/upgrade/")
    assert again.status_code == 409 and "Only a ready store" in again.json()["detail"]
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("status", "chart_version", "message"),
    [
        (Status.FAILED, BEHIND, "Only a ready store can be upgraded; this one is failed"),
        (Status.PROVISIONING, BEHIND, "Only a ready store"),
        (Status.READY, OLD_VERSION, "nothing newer"),
        (Status.READY, "", "an unrecorded version"),
    ],
)
def test_only_a_ready_store_that_is_behind_may_start_an_upgrade(owner, owner_client, status, chart_version, message):
    store = make_store(owner, "Not Now", status=status, chart_version=chart_version)
    before = snapshot(store)
    response = csrf_post(owner_client, f"/stores/{store.pk}/upgrade", follow=True)
    assert message in response.content.decode()
    assert snapshot(store) == before


def test_another_users_store_is_404_for_upgrade_pin_and_history(store, stranger_api, stranger_client, staff_api):
    before = snapshot(store)
    for path in (f"/api/stores/{store.pk}/upgrade/", f"/api/stores/{store.pk}/pin/"):
        assert stranger_api.post(path, {"pinned": True}, format="json").status_code == 404
    assert stranger_api.get(f"/api/stores/{store.pk}/upgrades/").status_code == 404
    for path in (f"/stores/{store.pk}/upgrade", f"/stores/{store.pk}/pin"):
        assert csrf_post(stranger_client, path, {"pinned": "1"}).status_code == 404
    # Pinning is the owner's decision: staff see the store but cannot pin it.
    assert staff_api.post(f"/api/stores/{store.pk}/pin/", {"pinned": True}, format="json").status_code == 404
    assert snapshot(store) == before


def test_pinning_is_recorded_and_keeps_staff_and_rollouts_away(store, owner_api, staff, staff_api):
    response = owner_api.post(f"/api/stores/{store.pk}/pin/", {"pinned": True}, format="json")
    assert response.status_code == 200 and response.json()["upgrades_pinned"] is True
    assert StoreEvent.objects.filter(store=store, step="pin", message__startswith="Pinned at chart").exists()
    assert AuditEntry.objects.filter(action="store.pin", details__pinned=True).count() == 1
    refused = staff_api.post(f"/api/stores/{store.pk}/upgrade/")
    assert refused.status_code == 409 and "pinned" in refused.json()["detail"]
    nothing = staff_api.post("/api/rollouts/", {"engine": "woocommerce"}, format="json")
    assert nothing.status_code == 409 and "unpinned" in nothing.json()["detail"]
    bad = owner_api.post(f"/api/stores/{store.pk}/pin/", {"pinned": "maybe", "extra": 1}, format="json")
    assert bad.status_code == 400 and "pinned" in str(bad.json())
    assert (
        owner_api.post(f"/api/stores/{store.pk}/pin/", {"pinned": False}, format="json").json()["upgrades_pinned"]
        is False
    )


def test_owners_cannot_see_or_start_rollouts(store, owner_api, owner_client):
    before = snapshot(store)
    assert owner_api.post("/api/rollouts/", {"engine": "woocommerce"}, format="json").status_code == 403
    assert owner_api.get("/api/rollouts/").status_code == 403
    assert owner_api.get("/api/versions/").status_code == 403
    for path in ("/rollouts/", "/rollouts/new"):
        response = (
            owner_client.get(path) if path.endswith("/") else csrf_post(owner_client, path, {"engine": "woocommerce"})
        )
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert snapshot(store) == before
    assert "Rollouts" not in owner_client.get("/").content.decode()


def test_staff_plan_a_rollout_in_waves_and_each_store_is_told(
    owner, staff, staff_api, django_capture_on_commit_callbacks
):
    stores = [make_store(owner, f"Fleet {n}") for n in range(6)]
    make_store(owner, "Pinned One", upgrades_pinned=True)
    make_store(owner, "Current One", chart_version=OLD_VERSION)
    make_store(owner, "Broken One", status=Status.FAILED)
    with django_capture_on_commit_callbacks() as queued:
        response = staff_api.post(
            "/api/rollouts/", {"engine": "woocommerce", "canary_size": 1, "growth": 2, "start": False}, format="json"
        )
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["state"], data["target_version"], data["progress"]["stores"]) == ("pending", OLD_VERSION, 6)
    assert [w["size"] for w in data["progress"]["waves"]] == [1, 2, 3]
    assert {item["store"] for item in data["items"]} == {s.pk for s in stores}
    assert not queued, "a pending rollout queues nothing"
    planned = StoreEvent.objects.filter(step="upgrade_planned", message__contains=f"rollout #{data['id']}, wave")
    assert planned.count() == 6
    assert AuditEntry.objects.get(action="rollout.create").details["waves"] == [1, 2, 3]

    duplicate = staff_api.post("/api/rollouts/", {"engine": "woocommerce"}, format="json")
    assert duplicate.status_code == 409 and "still open" in duplicate.json()["detail"]
    with django_capture_on_commit_callbacks() as queued:
        started = staff_api.post(f"/api/rollouts/{data['id']}/start/")
    assert started.status_code == 200 and started.json()["state"] == "running" and len(queued) == 1
    paused = staff_api.post(f"/api/rollouts/{data['id']}/pause/")
    assert paused.json()["state"] == "paused"
    assert staff_api.post(f"/api/rollouts/{data['id']}/pause/").status_code == 409
    cancelled = staff_api.post(f"/api/rollouts/{data['id']}/cancel/")
    assert cancelled.json()["state"] == "cancelled"
    assert RolloutItem.objects.filter(rollout_id=data["id"], state="cancelled").count() == 6
    assert StoreEvent.objects.filter(step="upgrade_planned", message__startswith="No longer planned").count() == 6
    actions = list(AuditEntry.objects.filter(action__startswith="rollout.").values_list("action", flat=True))
    assert sorted(actions) == sorted(
        ["rollout.create", "rollout.start", "rollout.wave", "rollout.pause", "rollout.cancel"]
    )
    versions = staff_api.get("/api/versions/").json()
    woo = next(v for v in versions if v["engine"] == "woocommerce")
    assert woo["target"] == OLD_VERSION and woo["behind"] == 8  # 6 + the pinned and the failed one
    assert {v["chart_version"]: v["stores"] for v in woo["versions"]} == {BEHIND: 8, OLD_VERSION: 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"engine": "woocommerce", "growth": 0}, "growth must be a whole number from 1 to 10"),
        ({"engine": "woocommerce", "failure_threshold": 101}, "failure_threshold must be"),
        ({"engine": "woocommerce", "store_ids": [1, "two"]}, "store_ids: 1: A valid integer is required"),
        ({"engine": "woocommerce", "canary": 1}, "Unknown field"),
        ({"engine": "joomla"}, "is not a valid choice"),
        (["woocommerce"], "Send a JSON object"),
    ],
)
def test_bad_rollout_requests_say_why_and_change_nothing(store, staff_api, body, message):
    before = snapshot(store)
    response = staff_api.post("/api/rollouts/", body, format="json")
    assert response.status_code == 400, response.content
    assert message in str(response.json())
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"engine": "woocommerce", "target_version": "7.0.0"}, "not available"),
        ({"engine": "woocommerce", "owners": ["nobody-here"]}, "No such user(s): nobody-here"),
        ({"engine": "woocommerce", "store_ids": [999999]}, "No woocommerce store with id(s) 999999"),
        ({"engine": "woocommerce", "from_versions": ["0.0.9"]}, "nothing to do"),
        ({"engine": "medusa"}, "nothing to do"),
    ],
)
def test_rollouts_that_match_nothing_in_the_fleet_conflict_and_change_nothing(store, staff_api, body, message):
    """Well-formed, but nothing in the fleet as it is now to move: 409, as the same request may be right later."""
    before = snapshot(store)
    response = staff_api.post("/api/rollouts/", body, format="json")
    assert response.status_code == 409, response.content
    assert message in response.json()["detail"]
    assert snapshot(store) == before
    assert not Rollout.objects.exists()


def test_dashboard_pages_for_staff(store, owner, staff, staff_client, owner_client):
    rollout = services.create_rollout(staff, services.RolloutSpec(engine="woocommerce", start=False))
    page = staff_client.get("/rollouts/").content.decode()
    assert f"#{rollout.pk}" in page and "Versions in the fleet" in page and f"{BEHIND}: 1" in page
    detail = staff_client.get(f"/rollouts/{rollout.pk}/").content.decode()
    assert "Corner Shop" in detail and "(canary)" in detail and ">Start<" in detail
    response = csrf_post(staff_client, f"/rollouts/{rollout.pk}/start", follow=True)
    assert Rollout.objects.get(pk=rollout.pk).state == Rollout.State.RUNNING
    assert ">Pause<" in response.content.decode()
    assert csrf_post(staff_client, f"/rollouts/{rollout.pk}/explode").status_code == 404
    created = csrf_post(staff_client, "/rollouts/new", {"engine": "medusa", "canary_size": 1, "growth": 2,
                        "concurrency": 2, "failure_threshold": 0, "store_ids": "12 x"}, follow=True)  # fmt: skip
    assert "Store ids are whole numbers" in created.content.decode()
    # The owner's store page shows the version, the update and the planned upgrade.
    store_page = owner_client.get(f"/stores/{store.pk}/").content.decode()
    assert f"update available: {OLD_VERSION}" in store_page and "Pin this version" in store_page
    assert f"Upgrade to {OLD_VERSION}" in store_page and "Planned: upgrade from chart" in store_page
