"""Fixtures of the simulated-cluster fidelity tests (the cluster itself comes from tests/plugins/simcluster.py)."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import has_default_service_account, unique_name, wait_for


@pytest.fixture
def core(kube_api_client) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api_client)


@pytest.fixture
def make_namespace(core):
    """make_namespace(prefix, labels=None) -> name: a fresh namespace, deleted after the test."""
    created: list[str] = []

    def make(prefix: str = "sim", labels: dict[str, str] | None = None) -> str:
        name = unique_name(prefix)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels or {})))
        created.append(name)
        # Pods need the namespace's default ServiceAccount, made by the controller manager.
        wait_for(
            lambda: has_default_service_account(core, name),
            30,
            f"default ServiceAccount in {name}",
        )
        return name

    yield make
    for name in created:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
