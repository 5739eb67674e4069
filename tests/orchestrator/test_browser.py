"""One real browser session (Debian's headless Chromium driven by Playwright) against the live
server, a real worker and the simulated cluster: log in, create a store, watch the detail page
reach Ready without reloading, delete it with confirmation, watch it reach Deleted."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from django.db import connections

from stores_app.models import Store
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the test makes
    # alongside it are ordinary blocking calls, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = context.new_page()
        yield page
        # ORM calls made beside Playwright's loop opened a connection in that loop's context, which
        # pytest-django's own teardown cannot see; close it here so the test database can be dropped.
        connections.close_all()
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def test_login_create_watch_ready_delete(live_server, celery_worker, owner, browser_page):
    page = browser_page
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#create-store")

    page.fill("#create-store input[name=name]", "Browser Shop")
    page.select_option("#create-store select[name=engine]", "woocommerce")
    page.click("#create-store button[type=submit]")
    page.wait_for_selector("#store-status")
    url_before = page.url
    # The status flips to Ready through the page's own polling: no reload happens.
    page.wait_for_function("document.getElementById('store-status').textContent.trim() === 'Ready'", timeout=300_000)
    assert page.url == url_before
    assert "Smoke test" in page.inner_text("#timeline")

    page.click("text=Delete…")
    page.fill("input[name=confirm_name]", "Browser Shop")
    page.click("button.danger[type=submit]")
    page.wait_for_function("document.getElementById('store-status').textContent.trim() === 'Deleted'", timeout=300_000)
    assert Store.objects.get(name="Browser Shop").status == "deleted"
