"""The real helm binary against the simulated cluster: install --wait, helm test, uninstall, teardown."""

from __future__ import annotations

import json
import re

import pytest
from kubernetes import client

from .helpers import CHART, RESTRICTED, namespace_gone, wait_for

pytestmark = pytest.mark.cluster


def helm(cluster, *args, timeout=300):
    result = cluster.run(cluster.helm, *args, check=False, timeout=timeout)
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def install(cluster, release, ns):
    helm(cluster, "install", release, str(CHART), "--namespace", ns,
         "--wait", "--wait-for-jobs", "--timeout", "3m")  # fmt: skip


def test_chart_installs_ready_and_helm_test_passes(kube_cluster, kube_api_client, make_namespace):
    ns = make_namespace("sim-helm", labels=RESTRICTED)
    install(kube_cluster, "fid", ns)

    status = json.loads(helm(kube_cluster, "status", "fid", "--namespace", ns, "-o", "json"))
    assert status["info"]["status"] == "deployed"

    apps = client.AppsV1Api(kube_api_client)
    deployment = apps.read_namespaced_deployment("fid-web", ns)
    assert deployment.status.available_replicas == 2
    statefulset = apps.read_namespaced_stateful_set("fid-db", ns)
    assert statefulset.status.ready_replicas == 1
    job = client.BatchV1Api(kube_api_client).read_namespaced_job("fid-setup-1", ns)
    assert job.status.succeeded == 1
    assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])

    core = client.CoreV1Api(kube_api_client)
    pvc = core.read_namespaced_persistent_volume_claim("data-fid-db-0", ns)
    assert pvc.status.phase == "Bound"
    assert pvc.spec.storage_class_name == "standard"
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.spec.claim_ref.namespace == ns
    assert pv.spec.persistent_volume_reclaim_policy == "Delete"

    ingress = client.NetworkingV1Api(kube_api_client).read_namespaced_ingress("fid-web", ns)
    assert ingress.spec.ingress_class_name == "nginx"

    out = helm(kube_cluster, "test", "fid", "--namespace", ns, "--timeout", "2m")
    assert re.search(r"Phase:\s+Succeeded", out), out
    test_pod = core.read_namespaced_pod("fid-test", ns)
    assert test_pod.status.phase == "Succeeded"


def test_uninstall_and_namespace_deletion_leave_nothing(kube_cluster, kube_api_client, make_namespace):
    core = client.CoreV1Api(kube_api_client)
    ns = make_namespace("sim-teardown", labels=RESTRICTED)
    install(kube_cluster, "fid", ns)
    pv_name = core.read_namespaced_persistent_volume_claim("data-fid-db-0", ns).spec.volume_name
    assert pv_name

    helm(kube_cluster, "uninstall", "fid", "--namespace", ns, "--wait", "--timeout", "2m")
    releases = json.loads(helm(kube_cluster, "list", "--namespace", ns, "--all", "-o", "json"))
    assert releases == []
    # helm leaves StatefulSet claims behind by design; the namespace deletion must take them.
    core.delete_namespace(ns)
    wait_for(lambda: namespace_gone(core, ns), 60, f"namespace {ns} gone")

    def pv_gone():
        return pv_name not in {pv.metadata.name for pv in core.list_persistent_volume().items}

    wait_for(pv_gone, 30, f"PV {pv_name} deleted (reclaim policy Delete)")
    leftovers = [pv.metadata.name for pv in core.list_persistent_volume().items
                 if pv.spec.claim_ref and pv.spec.claim_ref.namespace == ns]  # fmt: skip
    assert leftovers == []
