"""Fixtures of the store-chart tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.charts.store_chart import InstalledStore


@pytest.fixture(scope="module")
def installed_store(request, kube_cluster, kube_api_client) -> Iterator[InstalledStore]:
    """One store of the test module's ``STORE_ENGINE``, installed the way the orchestrator installs
    it, for all the module's tests; torn down after them."""
    with InstalledStore.installed(kube_cluster, kube_api_client, request.module.STORE_ENGINE) as store:
        yield store
