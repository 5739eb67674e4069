"""Every dashboard page and API endpoint as the owner, another user, staff and anonymously.

Another user's store is a 404 (its existence does not leak); anonymous users are sent to log in
(dashboard) or get 401 (API); staff see every store but not other owners' credentials.
"""

import pytest

from stores_app.models import AuditEntry, Store
from stores_app.naming import namespace_for, release_for
from tests.conftest import csrf_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(owner):
    s = Store.objects.create(
        owner=owner,
        name="Corner Shop",
        slug="corner-shop",
        engine="woocommerce",
        status="failed",
        status_message="boom",
    )
    s.namespace, s.release_name = namespace_for(s.pk, s.slug), release_for(s.pk, s.slug)
    s.save()
    return s


DASHBOARD_GETS = ["/stores/{id}/", "/stores/{id}/progress", "/stores/{id}/delete"]
DASHBOARD_POSTS = ["/stores/{id}/retry", "/stores/{id}/delete", "/stores/{id}/credentials"]
DASHBOARD_POSTS += ["/stores/{id}/upgrade", "/stores/{id}/pin"]
API_GETS = ["/api/stores/{id}/", "/api/stores/{id}/events/", "/api/stores/{id}/upgrades/"]
API_POSTS = ["/api/stores/{id}/retry/", "/api/stores/{id}/credentials/"]
API_POSTS += ["/api/stores/{id}/upgrade/", "/api/stores/{id}/pin/"]


@pytest.mark.parametrize("path", DASHBOARD_GETS)
def test_dashboard_pages_owner_ok_stranger_404_anonymous_login(path, store, owner_client, stranger_client, client):
    url = path.format(id=store.pk)
    assert owner_client.get(url).status_code == 200
    assert stranger_client.get(url).status_code == 404
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def snapshot(store) -> tuple:
    """Everything an action could change: the store row, its timeline, the audit log."""
    store.refresh_from_db()
    return (store.status, store.status_message, store.updated_at, store.events.count(), AuditEntry.objects.count())


@pytest.mark.parametrize("path", DASHBOARD_POSTS)
def test_dashboard_actions_stranger_404_anonymous_login(path, store, stranger_client, client):
    url = path.format(id=store.pk)
    before = snapshot(store)
    assert csrf_post(stranger_client, url, {"confirm_name": store.name}).status_code == 404
    assert snapshot(store) == before
    # Anonymous, with a valid CSRF token as a browser would have one: sent to log in, nothing done.
    client.get("/accounts/login/")
    response = client.post(url, {"confirm_name": store.name}, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"
    assert snapshot(store) == before


def test_lists_show_only_own_stores_except_for_staff(
    store, owner_client, stranger_client, staff_client, owner_api, stranger_api, staff_api
):
    assert "Corner Shop" in owner_client.get("/").content.decode()
    assert "Corner Shop" not in stranger_client.get("/").content.decode()
    assert "Corner Shop" in staff_client.get("/").content.decode()
    assert [s["id"] for s in owner_api.get("/api/stores/").json()["results"]] == [store.pk]
    assert stranger_api.get("/api/stores/").json()["results"] == []
    assert [s["id"] for s in staff_api.get("/api/stores/").json()["results"]] == [store.pk]


@pytest.mark.parametrize("path", API_GETS)
def test_api_reads(path, store, owner_api, stranger_api, staff_api, client):
    url = path.format(id=store.pk)
    assert owner_api.get(url).status_code == 200
    assert stranger_api.get(url).status_code == 404
    assert staff_api.get(url).status_code == 200
    assert client.get(url).status_code == 401


@pytest.mark.parametrize("path", API_POSTS)
def test_api_actions_stranger_404_anonymous_401(path, store, stranger_api, client):
    url = path.format(id=store.pk)
    assert stranger_api.post(url).status_code == 404
    assert client.post(url).status_code == 401
    store.refresh_from_db()
    assert store.status == "failed"


def test_api_delete_stranger_404_anonymous_401(store, stranger_api, client):
    assert stranger_api.delete(f"/api/stores/{store.pk}/").status_code == 404
    assert client.delete(f"/api/stores/{store.pk}/").status_code == 401
    store.refresh_from_db()
    assert store.status == "failed"


def test_staff_cannot_read_another_owners_credentials(store, staff_api, staff_client):
    assert staff_api.post(f"/api/stores/{store.pk}/credentials/").status_code == 404
    assert csrf_post(staff_client, f"/stores/{store.pk}/credentials").status_code == 404


def test_owner_retry_and_delete(store, owner_api):
    response = owner_api.post(f"/api/stores/{store.pk}/retry/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    response = owner_api.delete(f"/api/stores/{store.pk}/")
    assert response.status_code == 202 and response.json()["status"] == "deleting"
    assert owner_api.post(f"/api/stores/{store.pk}/retry/").status_code == 409


def test_dashboard_delete_requires_typed_name(store, owner_client):
    csrf_post(owner_client, f"/stores/{store.pk}/delete", {"confirm_name": "wrong"})
    store.refresh_from_db()
    assert store.status == "failed"
    csrf_post(owner_client, f"/stores/{store.pk}/delete", {"confirm_name": "Corner Shop"})
    store.refresh_from_db()
    assert store.status == "deleting"


def test_admin_and_orphans_are_staff_only(owner_client, staff_client):
    assert owner_client.get("/admin/").status_code == 302
    assert staff_client.get("/admin/").status_code == 200
    assert staff_client.get("/admin/stores_app/auditentry/").status_code == 200
    assert csrf_post(owner_client, "/orphans/1", {"action": "adopt"}).status_code == 302  # to admin login


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/stores/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_token_issue_and_revoke(owner, client):
    import base64

    from rest_framework.test import APIClient

    basic = base64.b64encode(b"owner:correct-horse-battery-staple").decode()
    response = client.post("/api/auth/token/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200
    token = response.json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/stores/").status_code == 200
    assert api.post("/api/auth/logout/").status_code == 204
    assert api.get("/api/stores/").status_code == 401
