"""Fixtures for the image tests: the stand-in images (built or reused from build.sh's cache), the
charts rendered as a store or an install would render them, and containers that are always removed."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.charts import REPO_ROOT, helm
from tests.images.chart_pod import ChartContainer, build_images, workload_container

KUBERNETES_VERSION = next(
    line.split("=", 1)[1].strip()
    for line in (REPO_ROOT / "tools" / "simcluster" / "versions.env").read_text().splitlines()
    if line.startswith("KUBERNETES_VERSION=")
)
CHARTS = {
    "medusa": (REPO_ROOT / "charts" / "medusa", REPO_ROOT / "charts" / "medusa" / "ci" / "default-values.yaml"),
    "woocommerce": (
        REPO_ROOT / "charts" / "woocommerce",
        REPO_ROOT / "charts" / "woocommerce" / "ci" / "default-values.yaml",
    ),
    "orchestrator": (REPO_ROOT / "deploy" / "helm" / "store-orchestrator", None),
}


@pytest.fixture(scope="session")
def stand_in_images() -> dict[str, str]:
    return build_images("postgres", "redis", "mariadb")


@pytest.fixture(scope="session")
def rendered() -> Callable[[str], list[dict]]:
    cache: dict[str, list[dict]] = {}

    def _rendered(chart: str) -> list[dict]:
        if chart not in cache:
            path, values = CHARTS[chart]
            # The simulated cluster's Kubernetes version: the orchestrator's chart requires >= 1.30.
            args = ["template", "shop", str(path), "--namespace", "shop", "--kube-version", KUBERNETES_VERSION]
            result = helm(*args, *(["--values", str(values)] if values else []))
            assert result.returncode == 0, result.stderr
            cache[chart] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[chart]

    return _rendered


@pytest.fixture
def secret_values() -> dict[str, str]:
    """Whatever key a chart's secretKeyRef names gets a fresh random value (never a real secret)."""

    class AnyKey(dict):
        def __missing__(self, key: str) -> str:
            self[key] = secrets.token_urlsafe(18)
            return self[key]

    return AnyKey()


@pytest.fixture
def chart_container(
    stand_in_images, rendered, secret_values, tmp_path: Path
) -> Iterator[Callable[[str, str, str], ChartContainer]]:
    """Starts the named chart's container on its stand-in image; removed again after the test."""
    started: list[ChartContainer] = []

    def _start(chart: str, workload: str, container: str) -> ChartContainer:
        pod, spec = workload_container(rendered(chart), workload, container)
        name = f"test-{chart}-{workload}-{secrets.token_hex(3)}"
        running = ChartContainer(
            name=name,
            image=stand_in_images[workload],
            pod=pod,
            spec=spec,
            secrets=secret_values,
            volumes_dir=tmp_path / name,
        )
        started.append(running)
        return running.start()

    yield _start
    for running in started:
        running.remove()
