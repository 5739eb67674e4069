"""Fixtures of the store-chart tests: a store installed the way the orchestrator installs it,
of the test module's ``STORE_ENGINE``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.charts.store_chart import InstalledStore


@pytest.fixture(scope="module")
def installed_store(request, kube_cluster, kube_api_client) -> Iterator[InstalledStore]:
    """One store shared by the module's read-only checks, so they do not each pay for an install.
    A test that changes a store (upgrade, a cron run, teardown) takes ``fresh_store`` instead; this
    one must still be at its first revision when the module ends, or a test broke the rule."""
    with InstalledStore.installed(kube_cluster, kube_api_client, request.module.STORE_ENGINE) as store:
        yield store
        assert store.status()["version"] == 1, "a test changed the shared store: give it fresh_store"


@pytest.fixture
def fresh_store(request, kube_cluster, kube_api_client) -> Iterator[InstalledStore]:
    """A store of its own for a test that changes it; uninstalled afterwards (a failed uninstall fails)."""
    with InstalledStore.installed(kube_cluster, kube_api_client, request.module.STORE_ENGINE) as store:
        yield store
