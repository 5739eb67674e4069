"""Quota holds under concurrency; rate limits answer 429 with Retry-After; both are audited."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from stores_app.models import AuditEntry, Store, UserQuota
from tests.conftest import PASSWORD, csrf_post, token_client


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_creates_at_quota_ten_make_exactly_ten(live_server, owner, settings):
    settings.STORES_PER_USER = 10
    settings.RATELIMIT_CREATE = "100/15m"
    from knox.models import AuthToken

    _, token = AuthToken.objects.create(user=owner)

    def create(i):
        return requests.post(
            f"{live_server.url}/api/stores/",
            json={"name": f"Shop {i}", "engine": "woocommerce"},
            headers={"Authorization": f"Token {token}"},
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(create, range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(202) == 10 and codes.count(403) == 10, codes
    assert Store.objects.filter(owner=owner).count() == 10
    denied = [r.json()["detail"] for r in responses if r.status_code == 403]
    assert all("10 of 10" in message for message in denied)
    assert AuditEntry.objects.filter(action=AuditEntry.Action.QUOTA_DENIED).count() == 10


@pytest.mark.django_db
def test_per_user_override_and_deleting_frees_quota(owner, owner_api):
    UserQuota.objects.create(user=owner, max_stores=0)
    assert owner_api.post("/api/stores/", {"name": "One", "engine": "medusa"}, format="json").status_code == 403
    UserQuota.objects.filter(user=owner).update(max_stores=2)
    first = owner_api.post("/api/stores/", {"name": "Shop One", "engine": "medusa"}, format="json")
    assert first.status_code == 202
    assert owner_api.post("/api/stores/", {"name": "Shop Two", "engine": "medusa"}, format="json").status_code == 202
    denied = owner_api.post("/api/stores/", {"name": "Shop Three", "engine": "medusa"}, format="json")
    assert denied.status_code == 403 and "2 of 2" in denied.json()["detail"]
    Store.objects.filter(pk=first.json()["id"]).update(status="deleted")
    assert owner_api.post("/api/stores/", {"name": "Shop Three", "engine": "medusa"}, format="json").status_code == 202


@pytest.mark.django_db
def test_api_rate_limit_429_with_retry_after(owner, settings):
    settings.RATELIMIT_READ = "5/15m"
    api = token_client(owner)
    codes = [api.get("/api/stores/").status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2
    response = api.get("/api/stores/")
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert AuditEntry.objects.filter(action=AuditEntry.Action.RATE_LIMITED, actor=owner).count() == 1


@pytest.mark.django_db
def test_create_is_stricter_than_reads(owner, settings):
    settings.RATELIMIT_CREATE = "2/15m"
    api = token_client(owner)
    codes = [
        api.post("/api/stores/", {"name": f"Shop {i}", "engine": "woocommerce"}, format="json").status_code
        for i in range(3)
    ]
    assert codes == [202, 202, 429]
    assert api.get("/api/stores/").status_code == 200
    assert Store.objects.count() == 2


@pytest.mark.django_db
def test_dashboard_rate_limit(owner_client, settings):
    settings.RATELIMIT_CREATE = "1/15m"
    first = csrf_post(owner_client, "/stores/new", {"name": "Shop One", "engine": "woocommerce"})
    second = csrf_post(owner_client, "/stores/new", {"name": "Shop Two", "engine": "woocommerce"})
    assert first.status_code == 302 and second.status_code == 429
    assert "Retry-After" in second and "Try again in" in second.content.decode()
    assert Store.objects.count() == 1


@pytest.mark.django_db
def test_anonymous_limited_by_address_and_proxy_header_only_when_trusted(client, settings):
    settings.RATELIMIT_READ = "2/15m"
    settings.TRUSTED_PROXY_COUNT = 0
    # Without a trusted proxy, a forged X-Forwarded-For does not buy a fresh bucket.
    codes = [client.get("/api/stores/", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(3)]
    assert codes == [401, 401, 429]
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get("/api/stores/", HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 401


@pytest.mark.django_db
def test_failed_login_is_audited(client, owner):
    client.post("/accounts/login/", {"username": "owner", "password": "wrong"}, REMOTE_ADDR="198.51.100.7")
    entry = AuditEntry.objects.get(action=AuditEntry.Action.LOGIN_FAILED)
    assert (entry.actor_name, entry.address, entry.outcome) == ("owner", "198.51.100.7", "denied")


@pytest.mark.django_db
def test_audit_log_is_append_only_and_scoped(owner, stranger, owner_client, stranger_client, owner_api):
    owner_api.post("/api/stores/", {"name": "Corner Shop", "engine": "woocommerce"}, format="json")
    entry = AuditEntry.objects.get(action=AuditEntry.Action.STORE_CREATE)
    with pytest.raises(Exception, match="append-only"):
        entry.details = {"tampered": True}
        entry.save()
    with pytest.raises(Exception, match="append-only"):
        entry.delete()
    assert "Corner Shop" in owner_client.get("/audit/").content.decode()
    assert "Corner Shop" not in stranger_client.get("/audit/").content.decode()


@pytest.mark.django_db
def test_password_guessing_is_limited_per_address(client, owner, settings):
    settings.RATELIMIT_LOGIN = "3/15m"
    codes = [
        client.post("/accounts/login/", {"username": "owner", "password": f"guess{i}"}).status_code for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    import base64

    basic = base64.b64encode(b"owner:guess").decode()
    assert client.post("/api/auth/token/", HTTP_AUTHORIZATION=f"Basic {basic}").status_code == 429


@pytest.mark.django_db
def test_admin_login_is_limited_like_the_others_and_its_failures_audited(client, staff):
    """60 wrong passwords on /admin/login/ from one address: the 21st and later are refused (the default
    20/15m), and the right password from that address is refused too until the window ends."""
    address = "198.51.100.9"

    def admin_login(password: str, remote: str = address):
        data = {"username": "operator", "password": password, "next": "/admin/"}
        return client.post("/admin/login/", data, REMOTE_ADDR=remote)

    codes = [admin_login(f"guess{i}").status_code for i in range(60)]
    assert codes == [200] * 20 + [429] * 40
    assert admin_login(PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    failures = AuditEntry.objects.filter(action=AuditEntry.Action.LOGIN_FAILED, address=address)
    assert failures.count() == 20 and set(failures.values_list("actor_name", flat=True)) == {"operator"}
    assert AuditEntry.objects.filter(action=AuditEntry.Action.RATE_LIMITED, address=address).count() == 1
    # Another address is not affected: the operator still gets in.
    assert admin_login(PASSWORD, remote="198.51.100.10").status_code == 302
