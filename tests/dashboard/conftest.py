"""Browser fixtures for the dashboard's tests: Debian's Chromium driven by Playwright (never a downloaded
browser), signed in through a real session cookie, and axe-core (from npm, cached) to check accessibility."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE_VERSION = "4.14.1"
NPM_CACHE = Path(os.environ.get("STORE_ORCHESTRATOR_CACHE", Path.home() / ".cache" / "store-orchestrator")) / "npm"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Impacts axe rates as failures here; "minor" and "moderate" findings are reported but do not fail.
BLOCKING_IMPACTS = {"serious", "critical"}


def axe_script() -> Path:
    """axe.min.js of the pinned axe-core, installed once with npm into the shared cache (about 2 s)."""
    target = NPM_CACHE / f"axe-core-{AXE_VERSION}"
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    with open(NPM_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(target), f"axe-core@{AXE_VERSION}"],
                check=True,
                capture_output=True,
                timeout=300,
            )
    return script


@pytest.fixture(scope="session")
def axe_path() -> Path:
    return axe_script()


@pytest.fixture
def browser(monkeypatch):
    """A headless Chromium; yields a function making a new page with a given viewport."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the test makes
    # alongside it are ordinary blocking calls, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        contexts = []

        def new_page(width: int = 1280, height: int = 900):
            context = chromium.new_context(viewport={"width": width, "height": height})
            contexts.append(context)
            return context.new_page()

        yield new_page
        # ORM calls made beside Playwright's loop opened a connection in that loop's context, which
        # pytest-django's own teardown cannot see; close it here so the test database can be dropped.
        connections.close_all()
        for context in contexts:
            context.close()
        chromium.close()


def sign_in(page, live_server, user) -> None:
    """Give the page a real session of `user` (what logging in through the form leaves behind)."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def check_accessibility(page, axe_path: Path, what: str) -> list[dict]:
    """Run axe-core on the page as it is; fail on any serious or critical violation. Returns all found."""
    page.add_script_tag(path=str(axe_path))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
    )
    violations = result["violations"]
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    described = "\n".join(
        f"  {v['impact']}: {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:3]}" for v in blocking
    )
    assert not blocking, f"axe found serious or critical problems on {what}:\n{described}"
    return violations


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where screenshots go: docs/screenshots when SCREENSHOTS_DIR says so (make screenshots), else a
    temporary directory (CI takes them too, so the script cannot rot, but keeps the clone clean)."""
    target = Path(os.environ.get("SCREENSHOTS_DIR") or tempfile.mkdtemp(prefix="screenshots-", dir=tmp_path))
    target.mkdir(parents=True, exist_ok=True)
    return target
