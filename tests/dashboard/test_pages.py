"""The dashboard's pages and live fragments without a browser: inline errors that keep the input, the
create limit counting only created stores, polls answered 204 while nothing changed and stopping once
everything settled, staff filters and paging, readable activity, named tokens, styled error pages."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from stores_app import ratelimits
from stores_app.models import AuditEntry, Store, StoreEvent, UserQuota
from tests.conftest import csrf_post, make_user, token_client

pytestmark = pytest.mark.django_db


def make_store(owner, name: str, status: str = "ready", engine: str = "medusa") -> Store:
    slug = name.lower().replace(" ", "-")
    return Store.objects.create(
        owner=owner, name=name, slug=slug, engine=engine, status=status, namespace=f"t-{slug}", release_name=slug
    )


def test_an_invalid_name_keeps_the_input_and_says_why_under_the_field(owner_client):
    response = csrf_post(owner_client, "/stores/new", {"name": "-xyz", "engine": "medusa"})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'value="-xyz"' in html and 'aria-invalid="true"' in html
    assert 'id="store-name-error"' in html and "start and end with a letter or digit" in html
    assert '<option value="medusa" selected>' in html  # the engine chosen stays chosen
    assert Store.objects.count() == 0


def test_a_taken_address_is_a_field_error_too(owner, owner_client, stranger):
    make_store(stranger, "Corner Shop")
    response = csrf_post(owner_client, "/stores/new", {"name": "Corner Shop", "engine": "woocommerce"})
    assert response.status_code == 409
    assert "is taken" in response.content.decode() and 'value="Corner Shop"' in response.content.decode()


def test_invalid_attempts_do_not_count_against_the_create_limit(owner_client, settings):
    settings.RATELIMIT_CREATE = "1/15m"
    bad = [csrf_post(owner_client, "/stores/new", {"name": "!", "engine": "medusa"}).status_code for _ in range(3)]
    assert bad == [400, 400, 400]
    first = csrf_post(owner_client, "/stores/new", {"name": "Shop One", "engine": "medusa"})
    second = csrf_post(owner_client, "/stores/new", {"name": "Shop Two", "engine": "medusa"})
    assert (first.status_code, second.status_code) == (302, 429)
    assert 'value="Shop Two"' in second.content.decode()  # the 429 page keeps what was typed
    assert Store.objects.count() == 1


def test_the_api_counts_only_created_stores_against_the_create_limit(owner, settings):
    settings.RATELIMIT_CREATE = "1/15m"
    api = token_client(owner)
    bad = [api.post("/api/stores/", {"name": "x", "engine": "medusa"}, format="json").status_code for _ in range(3)]
    ok = api.post("/api/stores/", {"name": "Shop One", "engine": "medusa"}, format="json").status_code
    over = api.post("/api/stores/", {"name": "Shop Two", "engine": "medusa"}, format="json")
    assert bad == [400] * 3 and ok == 202 and over.status_code == 429 and int(over["Retry-After"]) > 0


def test_a_full_quota_disables_create_and_says_why(owner, owner_client):
    UserQuota.objects.create(user=owner, max_stores=1)
    make_store(owner, "Only Shop")
    html = owner_client.get("/").content.decode()
    assert 'id="create-button" disabled' in html and "You have 1 of 1 stores allowed" in html


def test_the_name_preview_shows_the_address_and_whether_it_is_free(owner, owner_client, settings):
    make_store(owner, "Corner Shop")
    check = reverse("store-name-check")
    assert (
        f"main-street.{settings.STORE_BASE_DOMAIN}" in owner_client.get(check, {"name": "Main Street"}).content.decode()
    )
    assert "is taken" in owner_client.get(check, {"name": "corner shop"}).content.decode()
    assert "start and end" in owner_client.get(check, {"name": "-x-"}).content.decode()


def test_list_polls_only_while_something_changes_and_answers_204_while_nothing_did(owner, owner_client):
    store = make_store(owner, "Busy Shop", status="provisioning")
    page = owner_client.get("/").content.decode()
    assert 'hx-trigger="every 2s"' in page
    rows = owner_client.get(reverse("store-rows"), HTTP_HX_REQUEST="true")
    token = rows.content.decode().split("v=", 1)[1].split('"', 1)[0]
    again = owner_client.get(reverse("store-rows"), {"v": token}, HTTP_HX_REQUEST="true")
    assert again.status_code == 204
    Store.objects.filter(pk=store.pk).update(status="ready", updated_at=timezone.now())
    settled = owner_client.get(reverse("store-rows"), {"v": token}, HTTP_HX_REQUEST="true")
    assert settled.status_code == 200 and "hx-trigger" not in settled.content.decode()  # polling stops
    assert 'data-status="Ready"' in settled.content.decode()


def test_store_page_polls_fast_while_changing_slowly_while_running_never_when_failed(owner, owner_client, settings):
    store = make_store(owner, "Some Shop", status="provisioning")
    progress = reverse("store-progress", args=[store.pk])
    assert f'every {settings.DASHBOARD_POLL_SECONDS}s"' in owner_client.get(progress).content.decode()
    Store.objects.filter(pk=store.pk).update(status="ready")
    page = owner_client.get(store.get_absolute_url()).content.decode()
    assert f'every {settings.DASHBOARD_HEALTH_POLL_SECONDS}s"' in page and 'id="health"' in page
    Store.objects.filter(pk=store.pk).update(status="failed", status_message="Smoke test failed: no order")
    assert "hx-trigger" not in owner_client.get(progress).content.decode()


def test_polls_use_the_read_bucket_never_the_write_one(owner, owner_client, rf):
    store = make_store(owner, "Some Shop", status="provisioning")
    for _ in range(5):
        owner_client.get(reverse("store-progress", args=[store.pk]), HTTP_HX_REQUEST="true")
    request = rf.post("/")
    request.user = owner
    from django_ratelimit.core import get_usage

    write = get_usage(request, group="stores:write", key=ratelimits._key, rate="100/15m", increment=False)
    read = get_usage(request, group="stores:read", key=ratelimits._key, rate="2400/15m", increment=False)
    assert write["count"] == 0 and read["count"] == 5


def test_a_failed_store_shows_one_summary_one_retry_and_folded_attempts(owner, owner_client):
    store = make_store(owner, "Sad Shop", status="failed")
    Store.objects.filter(pk=store.pk).update(status_message="Smoke test failed: the order was refused")
    for step, outcome, message in [
        ("requested", "info", "requested"),
        ("namespace", "succeeded", "Namespace created"),
        ("secrets", "succeeded", "Credentials generated"),
        ("failed", "failed", "first failure"),
        ("retry", "info", "Retry requested"),
        ("namespace", "succeeded", "Namespace in place"),
        ("secrets", "succeeded", "Credentials in place"),
        ("helm_install", "succeeded", "Release revision 1 applied"),
        *[("workloads", "waiting", f"waiting for deployment/web ({n})") for n in range(5)],
        ("workloads", "succeeded", "All workloads ready"),
        ("failed", "failed", "Smoke test failed: the order was refused"),
    ]:
        StoreEvent.objects.create(store=store, step=step, outcome=outcome, message=message)
    html = owner_client.get(store.get_absolute_url()).content.decode()
    assert html.count('id="retry-button"') == 1 and html.count('id="failure-summary"') == 1
    assert html.count("the order was refused") == 2  # once in the summary, once in the timeline
    assert "at “Smoke order”" in html
    assert "×5" in html and "Earlier attempt 1" in html
    assert 'data-step="smoke_test"' in html and 'class="step failed"' in html


def test_an_upgrading_store_shows_its_upgrade_as_a_new_attempt_with_its_own_steps(owner, owner_client):
    store = make_store(owner, "New Shop", status="ready")
    for step, outcome, message in [
        ("requested", "info", "requested"),
        ("helm_install", "succeeded", "Release revision 1 applied"),
        ("ready", "succeeded", "Store is ready"),
        ("upgrade", "info", "Upgrade from chart 0.2.0 to 0.3.0 requested"),
        ("upgrade", "started", "helm upgrade to chart 0.3.0"),
        ("upgrade", "succeeded", "Revision 2 applied (chart 0.3.0)"),
        ("upgrade_check", "waiting", "waiting for deployment/web"),
    ]:
        StoreEvent.objects.create(store=store, step=step, outcome=outcome, message=message)
    Store.objects.filter(pk=store.pk).update(status="upgrading")
    html = owner_client.get(store.get_absolute_url()).content.decode()
    assert 'data-step="upgrade"' in html and 'data-step="upgrade_check"' in html
    assert 'data-step="smoke_test"' not in html, "an upgrade is not shown as provisioning steps"
    assert "Earlier attempt 1" in html and "waiting for deployment/web" in html

    # Its rollback failed too: the store failed, and the summary says it was the upgrade.
    StoreEvent.objects.create(store=store, step="upgrade", outcome="failed", message="Upgrade to chart 0.3.0 failed")
    StoreEvent.objects.create(store=store, step="rollback", outcome="failed", message="Not healthy after rollback")
    Store.objects.filter(pk=store.pk).update(status="failed", status_message="Not healthy after rollback")
    html = owner_client.get(store.get_absolute_url()).content.decode()
    assert "Upgrading the store failed" in html and "Creating the store failed" not in html
    assert 'data-step="rollback"' in html and 'class="step failed"' in html


def test_staff_search_filter_and_page_through_many_stores(staff, staff_client, owner, settings):
    settings.DASHBOARD_PAGE_SIZE = 10
    other = make_user(type(owner), "someone")
    Store.objects.bulk_create(
        Store(owner=owner if n % 2 else other, name=f"Shop {n}", slug=f"shop-{n}", engine="medusa", status="ready")
        for n in range(35)
    )
    first = staff_client.get("/").content.decode()
    assert "Page 1 of 4" in first and 'name="owner"' in first
    by_owner = staff_client.get("/", {"owner": "someone"}).content.decode()
    assert "Page 1 of 2" in by_owner and ">Shop 34<" in by_owner and ">Shop 33<" not in by_owner
    assert ">Shop 33<" in staff_client.get("/", {"q": "shop-33"}).content.decode()
    assert "No store matches" in staff_client.get("/", {"engine": "woocommerce"}).content.decode()


def test_activity_reads_as_text_with_filters_and_pages(owner, owner_client, settings):
    settings.DASHBOARD_PAGE_SIZE = 5
    store = make_store(owner, "Shop One")
    for _ in range(7):
        AuditEntry.objects.create(
            action="store.create", outcome="success", actor=owner, store=store, details={"engine": "medusa"}
        )
    AuditEntry.objects.create(action="store.failed", outcome="failed", store=store, details={"reason": "smoke_test"})
    html = owner_client.get("/audit/").content.decode()
    assert "engine: medusa" in html and "{&#x27;engine" not in html and "Page 1 of 2" in html
    failed = owner_client.get("/audit/", {"outcome": "failed"}).content.decode()
    assert "reason: smoke_test" in failed and "engine: medusa" not in failed


def test_tokens_are_named_show_their_last_use_and_revoke_after_confirming(owner, owner_client):
    created = csrf_post(owner_client, "/tokens/", {"create": "1", "name": "CI deploys"})
    token = created.content.decode().split('id="new-token">', 1)[1].split("<", 1)[0]
    assert "CI deploys" in created.content.decode()
    page = owner_client.get("/tokens/").content.decode()
    assert "never" in page and "Revoke…" in page and "will be refused from now on" in page
    api = token_client(owner)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/stores/").status_code == 200
    assert "ago</time>" in owner_client.get("/tokens/").content.decode()
    csrf_post(owner_client, "/tokens/", {"revoke": token[:15]})
    assert api.get("/api/stores/").status_code == 401
    assert AuditEntry.objects.filter(action="token.revoke", details__name="CI deploys").exists()


def test_error_pages_say_what_happened_and_link_back(owner_client, client, settings):
    missing = owner_client.get("/stores/999999/")
    assert missing.status_code == 404 and "There is nothing here" in missing.content.decode()
    assert 'href="/"' in missing.content.decode()
    from django.template.loader import render_to_string

    assert "Something went wrong on our side" in render_to_string("500.html")
    settings.RATELIMIT_READ = "1/15m"
    owner_client.get("/")
    limited = owner_client.get("/audit/")
    assert limited.status_code == 429 and "Reload this page" in limited.content.decode()


def test_admin_is_branded(staff_client):
    assert "Store Orchestrator" in staff_client.get("/admin/").content.decode()
