"""The simulated cluster looks like a small real one: version, nodes, classes, scheduling, pod lifecycle."""

from __future__ import annotations

import json
import re

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

from .helpers import REPO_ROOT, restricted_pod, wait_for

pytestmark = pytest.mark.cluster


def pinned_kubernetes_version() -> str:
    for line in (REPO_ROOT / "tools" / "simcluster" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("KUBERNETES_VERSION missing from versions.env")


def test_server_reports_its_real_version(kube_cluster, kube_api_client):
    """helm and kwokctl read /version; the simulated cluster must report the pinned release."""
    version = client.VersionApi(kube_api_client).get_code().git_version
    out = kube_cluster.run(kube_cluster.kubectl, "version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["gitVersion"] == version
    if kube_cluster.simulated:
        assert version == pinned_kubernetes_version()
    else:
        assert re.fullmatch(r"v1\.\d+\.\d+.*", version)


def test_nodes_are_ready_and_sized_like_real_ones(core):
    nodes = core.list_node().items
    assert len(nodes) >= 3
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions or []}.get("Ready")
        assert ready == "True", f"node {node.metadata.name} not Ready"
        alloc = node.status.allocatable
        assert parse_quantity(alloc["cpu"]) >= 2
        assert parse_quantity(alloc["memory"]) >= parse_quantity("4Gi")
        assert int(alloc["pods"]) >= 30


def test_default_storage_class_and_ingress_class(kube_api_client):
    classes = client.StorageV1Api(kube_api_client).list_storage_class().items
    defaults = [
        c.metadata.name
        for c in classes
        if (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert defaults == ["standard"]
    ingress_classes = client.NetworkingV1Api(kube_api_client).list_ingress_class().items
    assert "nginx" in [c.metadata.name for c in ingress_classes]


def test_pod_runs_on_a_node_and_deletion_completes(core, make_namespace):
    ns = make_namespace("sim-pod")
    core.create_namespaced_pod(ns, restricted_pod("web"))

    def running():
        pod = core.read_namespaced_pod("web", ns)
        ready = {c.type: c.status for c in pod.status.conditions or []}.get("Ready")
        return pod if pod.status.phase == "Running" and ready == "True" else None

    pod = wait_for(running, 30, "pod web Running and Ready")
    assert pod.spec.node_name, "a Running pod must have been scheduled"
    assert pod.status.pod_ip

    core.delete_namespaced_pod("web", ns)

    def gone():
        try:
            core.read_namespaced_pod("web", ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, 30, "pod web deleted")


def test_scheduler_respects_allocatable(core, make_namespace):
    """A pod asking for more CPU than any node has stays Pending as Unschedulable."""
    ns = make_namespace("sim-sched")
    container = restricted_pod("x").spec.containers[0]
    container.resources = client.V1ResourceRequirements(requests={"cpu": "4000"})
    core.create_namespaced_pod(ns, restricted_pod("huge", container=container))

    def unschedulable():
        pod = core.read_namespaced_pod("huge", ns)
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
                return pod
        return None

    pod = wait_for(unschedulable, 30, "PodScheduled=False/Unschedulable")
    assert pod.status.phase == "Pending"
    assert not pod.spec.node_name


def test_service_ranges_hold_hundreds_of_services(kube_cluster, kube_api_client):
    """Dozens of stores need hundreds of ClusterIPs; the default /24 alone would run out."""
    cidrs = client.NetworkingV1Api(kube_api_client).list_service_cidr().items
    sizes = [2 ** (32 - int(c.split("/")[1])) for sc in cidrs for c in sc.spec.cidrs if "." in c]
    assert sum(sizes) >= 4096, f"service CIDRs too small: {[sc.spec.cidrs for sc in cidrs]}"
