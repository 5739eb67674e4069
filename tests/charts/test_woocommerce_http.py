"""How WordPress makes HTTP requests in a store's pods (charts/woocommerce/files/store-http.php),
run through WordPress' own HTTP API with the wp-config code the chart renders.

* A request to the store's own URL goes to STORE_LOOPBACK_URL (Apache in the WordPress pod, the
  WordPress Service from the jobs) with the store's Host and scheme, although the store's host does
  not resolve here, just as it need not inside a pod.
* Without internet egress (networkPolicy.wordpressEgress.enabled=false) any other request fails at
  once with WordPress' "blocked" error, while requests to the store itself still work.

WordPress core comes from Debian's ``wordpress`` package (6.1; the store runs 7.1, whose hooks,
HTTP API and WP_HTTP_BLOCK_EXTERNAL handling are the same), downloaded once with ``apt-get
download`` into the cache; PHP is Debian's php-cli (tools/dev/bootstrap.sh installs it). A PHP
built-in server stands in for Apache. No database is involved: the HTTP API needs none.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.charts import CHARTS_DIR, store_chart

CHART = CHARTS_DIR / "woocommerce"
HERE = Path(__file__).parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "store-orchestrator" / "wordpress-core"
STORE_HTTP_PATH = "/etc/wordpress-store/store-http.php"  # where the chart mounts it
BLOCKED = "User has blocked requests through HTTP."


def php() -> str:
    found = shutil.which("php")
    if not found:
        pytest.fail("php is not installed: tools/dev/bootstrap.sh installs php-cli")
    return found


@pytest.fixture(scope="session")
def wordpress_core() -> Path:
    """WordPress core from Debian's package, unpacked once into the cache."""
    core = CACHE / "usr" / "share" / "wordpress"
    if (core / "wp-includes" / "class-wp-http.php").exists():
        return core
    print("\nfetching Debian's wordpress package (about 8 MB, a few seconds)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as download:
        fetched = subprocess.run(
            ["apt-get", "download", "wordpress"], cwd=download, capture_output=True, text=True, timeout=300
        )
        debs = list(Path(download).glob("wordpress_*.deb"))
        assert fetched.returncode == 0 and debs, f"apt-get download wordpress failed: {fetched.stderr}"
        unpacked = CACHE.with_name("wordpress-core.partial")
        shutil.rmtree(unpacked, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True, timeout=120)
        shutil.rmtree(CACHE, ignore_errors=True)
        unpacked.rename(CACHE)
    return core


@pytest.fixture(scope="module")
def apache() -> Iterator[str]:
    """A PHP built-in server standing in for the store's Apache: it echoes path, Host and scheme."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [php(), "-S", f"127.0.0.1:{port}", str(HERE / "echo_request.php")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def pod_env(values: Path, component: str) -> dict[str, str]:
    """The WordPress-related environment the chart gives a pod's main container."""
    objects = store_chart.render(CHART, values)
    labels_and_spec = store_chart.every_pod(objects)[component]
    (container,) = labels_and_spec[1]["containers"]
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}


def request(wordpress_core: Path, env: dict[str, str], url: str, loopback: str) -> dict:
    """``url`` fetched by WordPress in a pod with this environment, STORE_LOOPBACK_URL pointed at
    ``loopback`` (the stand-in for what the chart names) and the store's PHP file from the repository."""
    extra = env["WORDPRESS_CONFIG_EXTRA"]
    assert f"require_once '{STORE_HTTP_PATH}';" in extra
    extra = extra.replace(STORE_HTTP_PATH, str(CHART / "files" / "store-http.php"))
    run_env = {
        "PATH": os.environ["PATH"],
        "WP_CORE": str(wordpress_core),
        "WORDPRESS_CONFIG_EXTRA": extra,
        "STORE_LOOPBACK_URL": loopback,
        "STORE_HTTP_BLOCK_EXTERNAL": env.get("STORE_HTTP_BLOCK_EXTERNAL", ""),
    }
    result = subprocess.run(
        [php(), str(HERE / "wordpress_http.php"), url], env=run_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def host_of(values: Path) -> str:
    return yaml.safe_load(values.read_text())["store"]["host"]


@pytest.mark.parametrize("component", ["wordpress", "cron", "setup"])
@pytest.mark.parametrize("values", [CHART / "ci" / "tls-values.yaml", CHART / "ci" / "default-values.yaml"])
def test_requests_to_the_store_itself_stay_in_the_namespace(values, component, wordpress_core, apache):
    env = pod_env(values, component)
    # WordPress reaches Apache in its own pod; the jobs reach the WordPress Service.
    expected = "http://localhost:" if component == "wordpress" else "http://shop-woocommerce-wordpress"
    assert env["STORE_LOOPBACK_URL"].startswith(expected)
    scheme = "https" if "tls" in values.name else "http"
    url = f"{scheme}://{host_of(values)}/wp-admin/admin-ajax.php?action=as_async_request_queue_runner"
    answer = request(wordpress_core, env, url, f"http://{apache}")
    assert answer.get("code") == 200, answer
    assert json.loads(answer["body"]) == {
        "path": "/wp-admin/admin-ajax.php?action=as_async_request_queue_runner",
        "host": host_of(values),
        "proto": scheme,
    }


def test_without_the_loopback_the_store_host_does_not_resolve(wordpress_core):
    """The control: what WordPress did before, here as in a pod whose DNS does not know the store."""
    values = CHART / "ci" / "default-values.yaml"
    answer = request(wordpress_core, pod_env(values, "wordpress"), f"http://{host_of(values)}/wp-cron.php", "")
    assert "error" in answer and BLOCKED not in answer["error"], answer


def test_other_hosts_are_not_rerouted(wordpress_core, apache):
    values = CHART / "ci" / "default-values.yaml"
    answer = request(wordpress_core, pod_env(values, "wordpress"), f"http://{apache}/direct", "http://localhost:9")
    assert json.loads(answer["body"])["host"] == apache, answer


@pytest.mark.parametrize("component", ["wordpress", "cron"])
def test_locked_down_wordpress_refuses_the_internet_at_once_but_reaches_itself(component, wordpress_core, apache):
    locked = pod_env(CHART / "ci" / "locked-down-values.yaml", component)
    assert locked["STORE_HTTP_BLOCK_EXTERNAL"] == "true"
    answer = request(wordpress_core, locked, "https://api.wordpress.org/core/version-check/1.7/", f"http://{apache}")
    assert answer == {"error": BLOCKED}
    # The store itself still answers, through the loopback (for the jobs an address WordPress would
    # otherwise block, as it blocks the WordPress Service's name: WP_ACCESSIBLE_HOSTS admits it).
    store = f"http://{host_of(CHART / 'ci' / 'locked-down-values.yaml')}/wp-cron.php"
    assert request(wordpress_core, locked, store, f"http://{apache}").get("code") == 200
    # With egress allowed, the same request is attempted (and fails here for want of a network).
    open_env = pod_env(CHART / "ci" / "default-values.yaml", component)
    assert open_env["STORE_HTTP_BLOCK_EXTERNAL"] == "false"
    answer = request(wordpress_core, open_env, "http://no-such-host.invalid/", f"http://{apache}")
    assert "error" in answer and answer["error"] != BLOCKED, answer
