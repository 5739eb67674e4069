"""The dashboard in a real browser (Debian's Chromium, Playwright) against the live server, a real worker and
the simulated cluster: the stepper advancing to ready, the health panel of a ready store, typing while the
list updates in place, inline errors, a 390-px phone without horizontal scrolling, and axe-core on every
page with no serious or critical violation. Screenshots for the README are taken on the way."""

from __future__ import annotations

import time

import pytest

from stores_app import services
from stores_app.models import AuditEntry, Rollout, Store, StoreEvent
from stores_app.tasks import refresh_health_pass
from tests.conftest import token_client
from tests.dashboard.conftest import check_accessibility, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = (390, 844)
COUNT_LIST_SWAPS = (
    "window.swaps = 0; document.addEventListener('htmx:afterSwap', "
    "e => { if (e.detail.target.id === 'store-rows') window.swaps++; })"
)
NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def wait_text(page, selector: str, text: str, timeout: float = 120_000) -> None:
    page.wait_for_function(
        "([s, t]) => { const e = document.querySelector(s); return e && e.textContent.includes(t); }",
        arg=[selector, text],
        timeout=timeout,
    )


@pytest.mark.cluster
def test_a_store_from_request_to_ready_with_health_then_the_list_updating_under_the_typing(
    live_server, celery_worker, owner, browser, axe_path, screenshots, settings
):
    settings.DASHBOARD_HEALTH_POLL_SECONDS = 2  # the page picks the first health look up at once
    page = browser()
    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/")
    page.fill("#store-name", "Harbour Books")
    page.select_option("#store-engine", "woocommerce")
    page.click("#create-button")

    # The stepper advances without a reload, announcing the status through the live region.
    page.wait_for_selector("ol.stepper")
    url_before = page.url
    page.wait_for_selector("li.step.done[data-step='namespace']", timeout=120_000)
    page.screenshot(path=str(screenshots / "store-provisioning.png"), full_page=True)
    wait_text(page, "#store-status", "Ready", timeout=300_000)
    assert page.url == url_before
    assert "Harbour Books is now Ready" in page.inner_text("#announcer")
    assert "Provisioned in" in page.inner_text("#progress")
    assert "Smoke test" in page.inner_text("#timeline")

    # The worker's health look (beat would queue it every minute) shows up on the page by itself.
    refresh_health_pass.delay()
    page.wait_for_selector("#health-workloads", timeout=120_000)
    workloads = page.inner_text("#health-workloads")
    assert "Deployment" in workloads and "StatefulSet" in workloads
    assert "requests.cpu" in page.inner_text("#health-quota")
    assert page.locator("#health-events tbody tr").count() >= 1
    assert page.locator("#health-log, #health-log-note").count() == 1
    page.screenshot(path=str(screenshots / "store-ready-health.png"), full_page=True)
    check_accessibility(page, axe_path, "a ready store's page with its health")

    page.click("#credentials-button")
    page.wait_for_selector("#admin-password")
    check_accessibility(page, axe_path, "the credentials page")

    # The list polls while a store changes; what is typed in the create form survives every swap.
    store = Store.objects.get(name="Harbour Books")
    page.goto(f"{live_server.url}/")
    page.evaluate(COUNT_LIST_SWAPS)
    api = token_client(owner)
    assert api.post("/api/stores/", {"name": "Second Shop", "engine": "medusa"}, format="json").status_code == 202
    page.reload()  # the list now has a changing store, so it polls
    page.evaluate(COUNT_LIST_SWAPS)
    page.click("#new-store-action")  # opens the create panel with the cursor in the name field
    assert page.evaluate("document.activeElement.id") == "store-name"
    typed = "Corner Bakery Main Street"
    for char in typed:
        page.keyboard.type(char)
        time.sleep(0.25)
    page.wait_for_function("window.swaps >= 1", timeout=120_000)
    assert page.input_value("#store-name") == typed
    assert page.evaluate("document.activeElement.id") == "store-name"
    wait_text(page, "#store-name-hint", "corner-bakery-main-street.")  # the live address preview
    wait_text(page, "tr[data-store-name='Second Shop']", "Ready", timeout=300_000)
    assert page.input_value("#store-name") == typed and page.evaluate("document.activeElement.id") == "store-name"
    page.screenshot(path=str(screenshots / "list.png"), full_page=True)
    check_accessibility(page, axe_path, "the store list")

    page.goto(f"{live_server.url}/stores/{store.pk}/delete")
    check_accessibility(page, axe_path, "the delete confirmation")
    page.fill("#confirm-name", "Harbour Books")
    page.click("button.danger[type=submit]")
    wait_text(page, "#store-status", "Deleted", timeout=300_000)
    assert "Delete namespace" in page.inner_text("ol.stepper")
    second = Store.objects.get(name="Second Shop")
    assert api.delete(f"/api/stores/{second.pk}/").status_code == 202
    deadline = time.monotonic() + 300
    while Store.objects.get(pk=second.pk).status != "deleted" and time.monotonic() < deadline:
        time.sleep(1)


def _failed_store(owner) -> Store:
    """A store as the worker leaves one whose smoke order failed after a retry: realistic rows, no cluster."""
    store = Store.objects.create(
        owner=owner,
        name="Sunday Market",
        slug="sunday-market",
        engine="woocommerce",
        status="failed",
        namespace="store-9-sunday-market",
        release_name="store-9-sunday-market",
        helm_revision=2,
        failure_reason="smoke_test",
        status_message="Smoke test failed: the test order was refused (HTTP 500 from /wp-json/wc/store/checkout)",
    )
    for step, outcome, message in [
        ("requested", "info", "WooCommerce store requested"),
        ("namespace", "succeeded", "Namespace store-9-sunday-market created"),
        ("secrets", "succeeded", "Credentials generated"),
        ("helm_install", "started", "helm upgrade --install woocommerce chart"),
        ("failed", "failed", "Not ready after 20 minutes: waiting for deployment/wordpress"),
        ("retry", "info", "Retry requested"),
        ("namespace", "succeeded", "Namespace store-9-sunday-market in place"),
        ("secrets", "succeeded", "Credentials in place"),
        ("helm_install", "succeeded", "Release revision 2 applied"),
        *[("workloads", "waiting", "Waiting for deployment/wordpress") for _ in range(6)],
        ("workloads", "succeeded", "All workloads ready and setup jobs complete"),
        ("failed", "failed", store.status_message),
    ]:
        StoreEvent.objects.create(store=store, step=step, outcome=outcome, message=message)
    AuditEntry.objects.create(
        action="store.create", outcome="success", actor=owner, store=store, details={"engine": "woocommerce"}
    )
    AuditEntry.objects.create(action="store.failed", outcome="failed", store=store, details={"reason": "smoke_test"})
    return store


@pytest.mark.django_db(transaction=True)
def test_inline_errors_phones_and_every_page_accessible(live_server, owner, browser, axe_path, screenshots):
    page = browser()
    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/")
    check_accessibility(page, axe_path, "the empty store list")

    # Inline errors: the reason under the field, the input and the engine kept, aria-invalid set.
    page.fill("#store-name", "-x")
    wait_text(page, "#store-name-hint", "3 to 40 characters")  # the live check, before sending
    page.select_option("#store-engine", "medusa")
    page.fill("#store-name", "-xyz")
    page.click("#create-button")
    page.wait_for_selector("#store-name-error")
    assert "start and end with a letter or digit" in page.inner_text("#store-name-error")
    assert page.input_value("#store-name") == "-xyz" and page.input_value("#store-engine") == "medusa"
    assert page.get_attribute("#store-name", "aria-invalid") == "true"
    check_accessibility(page, axe_path, "the create form with an error")
    assert Store.objects.count() == 0

    failed = _failed_store(owner)
    page.goto(f"{live_server.url}/stores/{failed.pk}/")
    assert page.locator("#failure-summary").count() == 1 and page.locator("#retry-button").count() == 1
    assert "Earlier attempt 1" in page.inner_text("#progress") and "×6" in page.inner_text("#timeline")
    page.screenshot(path=str(screenshots / "store-failed.png"), full_page=True)
    check_accessibility(page, axe_path, "a failed store's page")

    pages = {
        "/audit/": "the activity log",
        "/tokens/": "the API tokens page",
        "/accounts/password/": "the password change page",
        "/stores/987654/": "the not-found page",
    }
    for path, what in pages.items():
        page.goto(f"{live_server.url}{path}")
        check_accessibility(page, axe_path, what)
    assert "smoke_test" in page.goto(f"{live_server.url}/audit/").text()

    # A 390-px phone: no horizontal scrolling anywhere, the nav folded behind a Menu button.
    phone = browser(*PHONE)
    sign_in(phone, live_server, owner)
    for path in ("/", f"/stores/{failed.pk}/", "/audit/", "/tokens/"):
        phone.goto(f"{live_server.url}{path}")
        assert phone.evaluate(NO_HORIZONTAL_SCROLL), f"{path} scrolls sideways on a phone"
    phone.goto(f"{live_server.url}/")
    assert phone.is_visible(".menu-toggle") and not phone.is_visible("#site-nav")
    phone.click(".menu-toggle")
    assert phone.is_visible("#site-nav a[href='/audit/']")
    phone.click(".menu-toggle")
    phone.screenshot(path=str(screenshots / "phone-list.png"), full_page=True)
    check_accessibility(phone, axe_path, "the store list on a phone")

    anonymous = browser()
    anonymous.goto(f"{live_server.url}/accounts/login/")
    check_accessibility(anonymous, axe_path, "the login page")


@pytest.mark.django_db(transaction=True)
def test_upgrade_and_rollout_pages_accessible_and_fit_a_phone(
    live_server, owner, staff, browser, axe_path, screenshots
):
    """The version card with an update available, the rollouts page (fleet versions, the new-rollout form)
    and a paused rollout's page with its waves: no accessibility violation, and none scrolls sideways on a
    phone. The rollout page is the README's screenshot."""
    behind = [
        Store.objects.create(
            owner=owner,
            name=f"Corner Shop {n}",
            slug=f"corner-shop-{n}",
            engine="woocommerce",
            status="ready",
            namespace=f"store-{80 + n}-corner-shop-{n}",
            release_name=f"store-{80 + n}-corner-shop-{n}",
            helm_revision=1,
            chart_version="0.0.1",
            app_version="0.0.1",
        )
        for n in range(3)
    ]
    assert behind[0].update_available, "the stores must be behind today's chart for the pages to offer an upgrade"
    rollout = services.create_rollout(staff, services.RolloutSpec(engine="woocommerce", canary_size=1, start=False))
    Rollout.objects.filter(pk=rollout.pk).update(
        state="paused", current_wave=1, state_message="Paused: 1 of 1 stores of wave 1 failed (more than 0%)."
    )
    rollout.items.filter(wave=1).update(
        state="failed", message="Rolled back to chart 0.0.1: helm test failed (the test order was refused)"
    )

    page = browser()
    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/stores/{behind[0].pk}/")
    assert behind[0].target_version in page.inner_text("#upgrade")
    check_accessibility(page, axe_path, "a store with an update available")

    page = browser()
    sign_in(page, live_server, staff)
    phone = browser(*PHONE)
    sign_in(phone, live_server, staff)
    for path, what in {"/rollouts/": "the rollouts page", f"/rollouts/{rollout.pk}/": "a paused rollout"}.items():
        page.goto(f"{live_server.url}{path}")
        check_accessibility(page, axe_path, what)
        phone.goto(f"{live_server.url}{path}")
        assert phone.evaluate(NO_HORIZONTAL_SCROLL), f"{path} scrolls sideways on a phone"
    assert page.locator("tr[data-wave]").count() == 2, "a canary of 1, then a wave of the other 2"
    page.screenshot(path=str(screenshots / "rollout.png"), full_page=True)
