"""The API schema tells the truth: schemathesis fetches the live schema from a running server and checks
every operation against it with every check on (status codes, content types, headers, response bodies,
valid input accepted, invalid input rejected, authentication required, …), including stateful
sequences (create, read, retry, delete) that follow the schema's links. Any failure fails the test
with schemathesis' report, which shows the request that reproduces it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from knox.models import AuthToken

from stores_app import helm as helm_module
from stores_app.kube import reset_client
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_the_api_matches_its_schema(live_server, transactional_db, owner, staff, kube_cluster, settings, tmp_path):
    # The fuzzer makes hundreds of requests and stores: limits that protect production would only
    # answer 429/403 (both documented) and hide the rest of the API from it.
    settings.RATELIMIT_READ = settings.RATELIMIT_WRITE = settings.RATELIMIT_CREATE = "100000/15m"
    settings.RATELIMIT_LOGIN = "100000/15m"
    settings.STORES_PER_USER = 100000
    settings.KUBECONFIG = kube_cluster.kubeconfig  # credentials are read from the cluster
    reset_client()
    helm_module.reset_clients()
    _, token = AuthToken.objects.create(user=owner)
    _, throwaway = AuthToken.objects.create(user=owner)
    _, staff_token = AuthToken.objects.create(user=staff)
    url = f"{live_server.url}/api/schema/"
    started = time.monotonic()
    # Four runs, because two operations change the credentials they are called with: logout revokes the
    # token it is sent with (so it gets its own), and a new token is asked for with the password; and the
    # staff-only operations (rollouts, the fleet's versions), which an owner's token would only see refused,
    # are fuzzed with a staff token instead.
    runs = [
        (
            "every store operation",
            ["--exclude-path-regex", "^/api/(auth|rollouts|versions)/", "-H", f"Authorization: Token {token}"],
        ),
        (
            "staff operations",
            ["--include-path-regex", "^/api/(rollouts|versions)/", "-H", f"Authorization: Token {staff_token}"],
        ),
        ("token login", ["--include-path", "/api/auth/token/", "--auth", f"{owner.username}:{PASSWORD}"]),
        ("logout", ["--include-path", "/api/auth/logout/", "-H", f"Authorization: Token {throwaway}"]),
    ]
    reports = []
    for name, options in runs:
        result = _schemathesis(url, options, tmp_path / name.replace(" ", "-"))
        reports.append(f"--- {name}: exit {result.returncode}\n{result.stdout[-12000:]}{result.stderr[-2000:]}")
        assert result.returncode == 0, reports[-1]
    print(f"schemathesis: {time.monotonic() - started:.0f} s for {len(runs)} runs")
    assert "Authentication failed" not in reports[0], reports[0]


def _schemathesis(url: str, options: list[str], report_dir: Path) -> subprocess.CompletedProcess:
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        url,
        "--max-examples",
        "25",
        "--seed",
        "20261202",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        *options,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)
