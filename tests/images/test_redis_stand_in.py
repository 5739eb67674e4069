"""The redis stand-in under the Medusa chart's pod spec (config with the password on stdin) and the
orchestrator chart's (--requirepass as arguments): its probes pass, and other hosts need the password."""

from __future__ import annotations

import pytest

from tests.images.chart_pod import client

pytestmark = pytest.mark.images


@pytest.mark.parametrize("chart", ["medusa", "orchestrator"])
def test_requires_the_password_from_other_hosts(chart, chart_container):
    redis = chart_container(chart, "redis", "redis")
    redis.wait_until("startup" if "startupProbe" in redis.spec else "readiness")
    assert redis.probe_passes("readiness") and redis.probe_passes("liveness")
    password = redis.env["REDIS_PASSWORD"]

    anonymous = client(redis.image, "redis-cli", "-h", redis.ip, "ping")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr

    stored = client(
        redis.image, "redis-cli", "-h", redis.ip, "set", "greeting", "hello", env={"REDISCLI_AUTH": password}
    )
    assert stored.stdout.strip() == "OK", stored.stderr
    read = client(redis.image, "redis-cli", "-h", redis.ip, "get", "greeting", env={"REDISCLI_AUTH": password})
    assert read.stdout.strip() == "hello"
    # What the charts asked for on the command line is in force: no snapshots.
    save = client(
        redis.image, "redis-cli", "-h", redis.ip, "--no-raw", "config", "get", "save", env={"REDISCLI_AUTH": password}
    )
    assert save.stdout.split("\n")[1].strip() in {'2) ""', ""}, save.stdout
