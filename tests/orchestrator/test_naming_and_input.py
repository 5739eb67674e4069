"""Bad input gets a clear 4xx and creates nothing: names, engines, JSON, methods, CSRF, size."""

import json

import pytest

from stores_app.models import AuditEntry, Store
from stores_app.naming import namespace_for, release_for, slug_for
from tests.conftest import csrf_post

pytestmark = pytest.mark.django_db

BAD_NAMES = {
    "": "Give the store a name",
    "ab": "3 to 40 characters",
    "x" * 41: "3 to 40 characters",
    "Café Paris": "ASCII",
    "-shop": "start and end",
    "shop_one!": "letters, digits, spaces and hyphens",
    "www": "reserved",
}


@pytest.mark.parametrize("name", list(BAD_NAMES))
def test_api_rejects_bad_names_with_reason(owner_api, name):
    response = owner_api.post("/api/stores/", {"name": name, "engine": "woocommerce"}, format="json")
    assert response.status_code == 400, response.content
    assert BAD_NAMES[name] in json.dumps(response.json())
    assert Store.objects.count() == 0


@pytest.mark.parametrize("name", list(BAD_NAMES))
def test_dashboard_rejects_bad_names_with_reason(owner_client, name):
    response = csrf_post(owner_client, "/stores/new", {"name": name, "engine": "woocommerce"})
    assert response.status_code == 400  # the form again, with the reason under the field
    assert BAD_NAMES[name] in response.content.decode()
    assert Store.objects.count() == 0


def test_unknown_engine(owner_api):
    response = owner_api.post("/api/stores/", {"name": "Corner Shop", "engine": "magento"}, format="json")
    assert response.status_code == 400
    assert "magento" in json.dumps(response.json())
    assert Store.objects.count() == 0


def test_unknown_fields_and_non_object_json(owner_api):
    response = owner_api.post("/api/stores/", {"name": "Corner Shop", "engine": "medusa", "replicas": 9}, format="json")
    assert response.status_code == 400 and "replicas" in response.json()
    response = owner_api.post("/api/stores/", "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert Store.objects.count() == 0


def test_malformed_json(owner_api):
    response = owner_api.post("/api/stores/", '{"name": "Corner', content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_oversized_body_is_413(owner_api):
    body = json.dumps({"name": "Corner Shop", "engine": "woocommerce", "pad": "x" * 100_000})
    response = owner_api.post("/api/stores/", body, content_type="application/json")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert Store.objects.count() == 0


def test_wrong_method(owner_api, owner):
    assert owner_api.put("/api/stores/", {}, format="json").status_code == 405
    store = Store.objects.create(owner=owner, name="Fixed Name", slug="fixed-name", engine="medusa")
    # Stores cannot be edited: PATCH is refused as a method, for an existing store and a missing one alike.
    assert owner_api.patch(f"/api/stores/{store.pk}/", {"name": "Renamed"}, format="json").status_code == 405
    assert owner_api.patch(f"/api/stores/{store.pk + 1}/", {"name": "Renamed"}, format="json").status_code == 405
    store.refresh_from_db()
    assert (store.name, store.slug) == ("Fixed Name", "fixed-name")


def test_dashboard_post_without_csrf_token_is_refused(owner_client):
    response = owner_client.post("/stores/new", {"name": "Corner Shop", "engine": "woocommerce"})
    assert response.status_code == 403
    assert Store.objects.count() == 0


def test_duplicate_name_is_a_conflict(owner_api, stranger_api):
    assert (
        owner_api.post("/api/stores/", {"name": "Corner Shop", "engine": "woocommerce"}, format="json").status_code
        == 202
    )
    response = stranger_api.post("/api/stores/", {"name": "corner shop", "engine": "medusa"}, format="json")
    assert response.status_code == 409
    assert "taken" in response.json()["detail"]
    assert Store.objects.count() == 1


def test_names_make_valid_kubernetes_names():
    slug = slug_for("A Very Long Store Name With Many Words 1")
    namespace, release = namespace_for(123456, slug), release_for(123456, slug)
    assert len(namespace) <= 63 and len(release) <= 53
    for name in (namespace, release):
        assert name == name.lower() and not name.endswith("-") and name[0].isalpha()


def test_create_writes_audit_entry(owner_api):
    response = owner_api.post(
        "/api/stores/", {"name": "Corner Shop", "engine": "woocommerce"}, format="json", REMOTE_ADDR="10.1.2.3"
    )
    store = Store.objects.get(pk=response.json()["id"])
    entry = AuditEntry.objects.get(action=AuditEntry.Action.STORE_CREATE)
    assert (entry.store, entry.actor_name, entry.address, entry.outcome) == (store, "owner", "10.1.2.3", "success")
