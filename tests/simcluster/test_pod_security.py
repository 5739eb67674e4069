"""Pod Security admission is enforced per namespace through labels."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import RESTRICTED, restricted_pod, wait_for

pytestmark = pytest.mark.cluster


def root_pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="app",
                    image="registry.example.invalid/app:1",
                    security_context=client.V1SecurityContext(run_as_user=0),
                )
            ]
        ),
    )


def test_restricted_namespace_rejects_root_pod_and_accepts_compliant_one(core, make_namespace):
    ns = make_namespace("sim-psa", labels=RESTRICTED)

    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_pod(ns, root_pod("as-root"))
    assert rejected.value.status == 403
    assert "violates PodSecurity" in rejected.value.body
    assert "restricted:latest" in rejected.value.body

    core.create_namespaced_pod(ns, restricted_pod("compliant"))
    wait_for(
        lambda: core.read_namespaced_pod("compliant", ns).status.phase == "Running",
        30,
        "compliant pod Running",
    )


def test_unlabelled_namespace_admits_root_pod(core, make_namespace):
    """The same root pod is admitted where no Pod Security level is enforced: the label is what matters."""
    ns = make_namespace("sim-psa-open")
    core.create_namespaced_pod(ns, root_pod("as-root"))
    assert core.read_namespaced_pod("as-root", ns).metadata.name == "as-root"
