"""Fixtures of the real-node tests: the node itself (Ready, run by a real kubelet), pods pinned to
it, and namespaces that are gone, volumes and all, when a test ends."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from tests.simcluster.helpers import has_default_service_account, namespace_gone, unique_name, wait_for

REPO = Path(__file__).resolve().parents[2]


def _cluster_setting(name: str) -> str:
    """A setting of tools/simcluster/common.sh (node name, label, taint, images): one home."""
    text = (REPO / "tools" / "simcluster" / "common.sh").read_text()
    match = re.search(rf"^{name}=(\S+)$", text, re.MULTILINE)
    assert match, f"{name} is not set in tools/simcluster/common.sh"
    return match.group(1)


REAL_NODE = _cluster_setting("REAL_NODE_NAME")
REAL_NODE_LABEL = _cluster_setting("REAL_NODE_LABEL")
REAL_NODE_TAINT = _cluster_setting("REAL_NODE_TAINT_KEY")
TOOLBOX_IMAGE = _cluster_setting("TOOLBOX_IMAGE")
CLUSTER_DNS_IP = _cluster_setting("CLUSTER_DNS_IP")

# What a pod (or a chart's values) needs to land on the real node and nowhere else.
NODE_SELECTOR = {REAL_NODE_LABEL: "true"}
TOLERATIONS = [{"key": REAL_NODE_TAINT, "operator": "Equal", "value": "true", "effect": "NoSchedule"}]


@pytest.fixture(scope="session")
def core_api(kube_api_client) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api_client)


@pytest.fixture(scope="session")
def real_node(kube_cluster, core_api) -> client.V1Node:
    """The real node, Ready; the tests error (never skip) when the cluster has none."""
    try:
        node = core_api.read_node(REAL_NODE)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        pytest.fail(
            f"the cluster has no real node {REAL_NODE!r}: start it with SIMCLUSTER_REAL_NODE=1 "
            "(tools/simcluster/stop.sh, then SIMCLUSTER_REAL_NODE=1 tools/simcluster/start.sh)"
        )

    def ready() -> client.V1Node | None:
        current = core_api.read_node(REAL_NODE)
        conditions = {c.type: c.status for c in current.status.conditions or []}
        return current if conditions.get("Ready") == "True" else None

    return wait_for(ready, 120, f"node {REAL_NODE} Ready") or node


@pytest.fixture
def real_namespace(core_api, real_node):
    """real_namespace(prefix) -> name: a Pod Security 'restricted' namespace, deleted (and waited
    for: its pods really stop) after the test."""
    created: list[str] = []

    def make(prefix: str = "rn") -> str:
        name = unique_name(prefix)
        labels = {"pod-security.kubernetes.io/enforce": "restricted"}
        core_api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        created.append(name)
        wait_for(lambda: has_default_service_account(core_api, name), 30, f"default ServiceAccount in {name}")
        return name

    yield make
    for name in created:
        try:
            core_api.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:  # the test deleted it itself
                raise
    for name in created:
        wait_for(lambda n=name: namespace_gone(core_api, n), 180, f"namespace {name} deleted")


def restricted_container(name: str, command: list[str], image: str = TOOLBOX_IMAGE, **extra) -> dict:
    """A container that passes Pod Security 'restricted' (as every store's containers must)."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        **extra,
    }


def on_real_node(spec: dict) -> dict:
    """A pod spec pinned to the real node (its label, its taint tolerated). Its processes run as
    PID 1, which ignores SIGTERM: a short grace period keeps namespace deletion from waiting 30 s."""
    return {"terminationGracePeriodSeconds": 1, **spec, "nodeSelector": NODE_SELECTOR, "tolerations": TOLERATIONS}


@dataclasses.dataclass(frozen=True)
class NodeImage:
    """An image built on this machine (tools/simcluster/images) and present on the real node."""

    name: str
    reference: str

    @property
    def repository(self) -> str:
        return self.reference.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]

    def values(self) -> dict:
        """The chart values that run this image as built here: never pulled."""
        return {"repository": self.repository, "tag": self.tag, "pullPolicy": "Never"}


@pytest.fixture(scope="session")
def node_images(real_node, kube_cluster):
    """node_images(*names) -> {name: NodeImage}: builds the images (cached by the hash of their
    inputs; CI builds them before pytest) and imports into the real node the ones it lacks."""
    known: dict[str, NodeImage] = {}

    def ensure(*names: str) -> dict[str, NodeImage]:
        missing = [n for n in names if n not in known]
        if missing:
            built = subprocess.run(
                [str(REPO / "tools" / "simcluster" / "images" / "build.sh"), *missing],
                capture_output=True,
                text=True,
                timeout=3600,
            )
            assert built.returncode == 0, f"images/build.sh {' '.join(missing)} failed:\n{built.stderr[-4000:]}"
            for line in built.stdout.splitlines():
                name, reference, archive = line.split()
                imported = subprocess.run(
                    [str(REPO / "tools" / "simcluster" / "realnode.sh"), "ensure-image", reference, archive],
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                assert imported.returncode == 0, f"importing {reference} failed:\n{imported.stderr}"
                known[name] = NodeImage(name, reference)
        return {n: known[n] for n in names}

    return ensure


def scheduling_values() -> dict:
    """The store charts' values that put every pod of a store on the real node."""
    return {"nodeSelector": NODE_SELECTOR, "tolerations": TOLERATIONS}
