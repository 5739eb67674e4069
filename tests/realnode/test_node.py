"""The real node works like a node of a real cluster: a real kubelet runs restricted containers,
Services resolve by name through the cluster DNS and route through kube-proxy, pods reach the API
server through the `kubernetes` Service with their ServiceAccount, and the simulator keeps away."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from tests.simcluster.helpers import wait_for

from .conftest import CLUSTER_DNS_IP, REAL_NODE, REAL_NODE_LABEL, on_real_node, restricted_container

pytestmark = pytest.mark.realnode


def _pod(name: str, spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


def _finished(core_api: client.CoreV1Api, namespace: str, name: str) -> str | None:
    phase = core_api.read_namespaced_pod(name, namespace).status.phase
    return phase if phase in ("Succeeded", "Failed") else None


def run_to_completion(core_api: client.CoreV1Api, namespace: str, name: str, script: str, **spec) -> str:
    """Runs `sh -c script` in a restricted pod on the real node; returns its log (fails the test,
    with the log, unless the container exited 0)."""
    pod_spec = on_real_node(
        {"restartPolicy": "Never", "containers": [restricted_container("main", ["sh", "-c", script])], **spec}
    )
    core_api.create_namespaced_pod(namespace, _pod(name, pod_spec))
    phase = wait_for(lambda: _finished(core_api, namespace, name), 120, f"pod {name} to finish")
    log = core_api.read_namespaced_pod_log(name, namespace)
    assert phase == "Succeeded", f"pod {name} {phase}; its log:\n{log}"
    return log


def test_node_is_run_by_a_real_kubelet_not_the_simulator(real_node):
    info = real_node.status.node_info
    assert info.container_runtime_version.startswith("containerd://"), info.container_runtime_version
    assert info.kubelet_version == "v1.36.3"
    assert real_node.metadata.labels[REAL_NODE_LABEL] == "true"
    assert "kwok.x-k8s.io/node" not in (real_node.metadata.annotations or {})
    assert any(t.key == REAL_NODE_LABEL and t.effect == "NoSchedule" for t in real_node.spec.taints or [])


def test_restricted_container_really_runs(core_api, real_namespace):
    namespace = real_namespace()
    log = run_to_completion(
        core_api,
        namespace,
        "whoami",
        'id -u; cat /proc/self/status | grep ^CapEff; touch /x 2>/dev/null || echo "read-only root"',
    )
    # Only a running process can print these: the uid it runs as, no capabilities, a read-only root.
    assert log.splitlines() == ["65534", "CapEff:\t0000000000000000", "read-only root"]
    pod = core_api.read_namespaced_pod("whoami", namespace)
    assert pod.spec.node_name == REAL_NODE
    assert pod.status.pod_ip.startswith("10.244.0.")


def test_services_resolve_by_name_and_route_through_kube_proxy(core_api, real_namespace):
    namespace = real_namespace()
    server = on_real_node(
        {
            "containers": [
                restricted_container(
                    "web",
                    ["sh", "-c", "echo served-by-$HOSTNAME > /www/index.html && exec httpd -f -p 8080 -h /www"],
                    ports=[{"containerPort": 8080}],
                    volumeMounts=[{"name": "www", "mountPath": "/www"}],
                    readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                )
            ],
            "volumes": [{"name": "www", "emptyDir": {}}],
        }
    )
    core_api.create_namespaced_pod(namespace, _pod("web", server))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    core_api.create_namespaced_service(namespace, service)
    wait_for(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in core_api.read_namespaced_pod("web", namespace).status.conditions or []
        ),
        60,
        "web pod Ready (its HTTP readiness probe run by kubelet)",
    )
    log = run_to_completion(
        core_api,
        namespace,
        "client",
        f"grep nameserver /etc/resolv.conf; nslookup web.{namespace}.svc.cluster.local; "
        f"timeout 10 wget -q -O- http://web.{namespace}.svc.cluster.local/ && timeout 10 wget -q -O- http://web/",
    )
    cluster_ip = core_api.read_namespaced_service("web", namespace).spec.cluster_ip
    assert f"nameserver {CLUSTER_DNS_IP}" in log
    assert f"Address: {cluster_ip}" in log, log
    assert log.count("served-by-web") == 2, log


def test_pod_reaches_the_api_server_through_the_kubernetes_service(core_api, real_namespace):
    """As client-go and the Python client do in a pod: KUBERNETES_SERVICE_HOST (an IP), the
    ServiceAccount's CA verifying the server's certificate for that IP (and for the Service's DNS
    name), and its token authenticating the request."""
    namespace = real_namespace()
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    # "Who am I?" answered by the API server for the token: a SelfSubjectReview.
    body = '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'
    request = (
        "printf 'POST /apis/authentication.k8s.io/v1/selfsubjectreviews HTTP/1.1\\r\\n"
        "Host: kubernetes.default.svc\\r\\nAuthorization: Bearer %s\\r\\nContent-Type: application/json\\r\\n"
        f"Content-Length: {len(body)}\\r\\nConnection: close\\r\\n\\r\\n{body}' "
        f'"$(cat {sa}/token)"'
    )
    tls = f"timeout 20 openssl s_client -quiet -CAfile {sa}/ca.crt -verify_return_error"
    log = run_to_completion(
        core_api,
        namespace,
        "api-client",
        'echo "host=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; '
        f"{request} | {tls} -connect $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT "
        "-verify_ip $KUBERNETES_SERVICE_HOST && "
        f"{request} | {tls} -connect kubernetes.default.svc:443 -verify_hostname kubernetes.default.svc",
        automountServiceAccountToken=True,
    )
    assert "host=10.0.0.1:443" in log
    compact = log.replace(" ", "")
    # Twice the API server names the pod's ServiceAccount: its token was accepted, over verified TLS.
    assert compact.count("HTTP/1.1201Created") == 2, log
    assert compact.count(f'"username":"system:serviceaccount:{namespace}:default"') == 2, log


def test_api_server_certificate_is_valid_for_the_kubernetes_service(kube_cluster):
    """Clients in pods verify the API server by the Service address and names (client-go and the
    Python client use KUBERNETES_SERVICE_HOST, an IP): the serving certificate must carry them."""
    state = Path(kube_cluster.kubeconfig).parent
    certificates = list(state.glob("kwok/clusters/*/pki/admin.crt"))
    assert certificates, f"no serving certificate under {state}"
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(certificates[0])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("IP Address:10.0.0.1", "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"):
        assert name in text, text


@pytest.mark.parametrize("component", ["coredns", "kube-proxy"])
def test_node_component_that_exits_is_started_again(component, kube_cluster, core_api, real_namespace):
    """supervise.sh restarts the real node's processes as it does the control plane's."""
    pid_file = Path(kube_cluster.kubeconfig).parent / "realnode" / "run" / f"{component}.pid"
    old = int(pid_file.read_text())
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: int(pid_file.read_text()) != old, 30, f"{component} started again")
    namespace = real_namespace()
    # Name resolution (CoreDNS) and the DNS Service's IP (kube-proxy) work again.
    log = run_to_completion(core_api, namespace, "after", "sleep 2; nslookup kubernetes.default.svc.cluster.local")
    assert "Address: 10.0.0.1" in log, log
