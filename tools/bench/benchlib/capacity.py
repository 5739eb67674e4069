"""Does the cluster have room for `parallelism` stores at once? Checked before anything is created.

A store's needs are read from the rendered chart (`helm template` with the benchmark's values):
pods and resource requests of its Deployments and StatefulSets, plus one setup Job pod. The room is
the Ready nodes' allocatable minus what the pods already on them request. A benchmark that does not
fit would only measure stores stuck in Pending, so it stops with the SIMCLUSTER_NODES it needs.
"""

from __future__ import annotations

import math
import subprocess

import yaml

_MEM = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def cpu_millis(value) -> float:
    text = str(value)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def mem_bytes(value) -> float:
    text = str(value)
    for suffix, factor in sorted(_MEM.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _pod_requests(spec: dict) -> tuple[float, float]:
    cpu = mem = 0.0
    for container in spec.get("containers", []):
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += cpu_millis(requests.get("cpu", 0))
        mem += mem_bytes(requests.get("memory", 0))
    return cpu, mem


def store_needs(helm: str, kubeconfig: str, chart: str, values: dict) -> dict:
    """Pods, CPU (millicores) and memory (bytes) one store requests at its peak."""
    rendered = subprocess.run(
        [helm, "template", "capacity-check", chart, "--values", "-", "--kubeconfig", kubeconfig],
        input=yaml.safe_dump(values).encode(),
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    pods = cpu = mem = 0.0
    for doc in yaml.safe_load_all(rendered):
        if not doc:
            continue
        kind = doc.get("kind")
        if kind in ("Deployment", "StatefulSet", "Job"):
            replicas = 1 if kind == "Job" else (doc["spec"].get("replicas") or 1)
            c, m = _pod_requests(doc["spec"]["template"]["spec"])
            pods += replicas
            cpu += c * replicas
            mem += m * replicas
    return {"pods": pods, "cpu_millis": cpu, "memory_bytes": mem}


def cluster_room(kubeconfig: str) -> dict:
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    nodes = []
    for node in core.list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
        if ready and not node.spec.unschedulable:
            nodes.append(node)
    alloc = {"pods": 0.0, "cpu_millis": 0.0, "memory_bytes": 0.0}
    for node in nodes:
        a = node.status.allocatable
        alloc["pods"] += float(a.get("pods", 0))
        alloc["cpu_millis"] += cpu_millis(a.get("cpu", 0))
        alloc["memory_bytes"] += mem_bytes(a.get("memory", 0))
    names = {n.metadata.name for n in nodes}
    used = {"pods": 0.0, "cpu_millis": 0.0, "memory_bytes": 0.0}
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.spec.node_name in names and pod.status.phase not in ("Succeeded", "Failed"):
            used["pods"] += 1
            for container in pod.spec.containers:
                requests = (container.resources and container.resources.requests) or {}
                used["cpu_millis"] += cpu_millis(requests.get("cpu", 0))
                used["memory_bytes"] += mem_bytes(requests.get("memory", 0))
    per_node = {k: v / max(1, len(nodes)) for k, v in alloc.items()}
    return {"nodes": len(nodes), "allocatable": alloc, "used": used, "per_node": per_node}


def check(helm: str, kubeconfig: str, charts: dict[str, tuple[str, dict]], stores_at_once: dict[str, int]) -> dict:
    """Compare the room with `stores_at_once` per engine; returns the figures and `fits`/`nodes_needed`."""
    need = {"pods": 0.0, "cpu_millis": 0.0, "memory_bytes": 0.0}
    per_engine = {}
    for engine, (chart, values) in charts.items():
        one = store_needs(helm, kubeconfig, chart, values)
        per_engine[engine] = one
        for key in need:
            need[key] += one[key] * stores_at_once.get(engine, 0)
    room = cluster_room(kubeconfig)
    free = {k: room["allocatable"][k] - room["used"][k] for k in need}
    fits = all(need[k] <= free[k] * 0.95 for k in need)  # 5% headroom for scheduling fragmentation
    nodes_needed = room["nodes"]
    for key in need:
        per_node = room["per_node"][key] or 1
        extra = (need[key] - free[key] * 0.95) / (per_node * 0.95)
        if extra > 0:
            nodes_needed = max(nodes_needed, room["nodes"] + math.ceil(extra))
    return {
        "fits": fits,
        "need": need,
        "free": free,
        "nodes": room["nodes"],
        "nodes_needed": nodes_needed,
        "per_store": per_engine,
    }


def resize_simulated_cluster(nodes: int) -> None:
    """Start the simulated cluster again with `nodes` simulated nodes (start.sh reuses a running cluster and
    adds the nodes; its SIMCLUSTER_* settings come from this process's environment)."""
    import os
    from pathlib import Path

    start = Path(__file__).resolve().parents[2] / "simcluster" / "start.sh"
    subprocess.run(
        [str(start)], env={**os.environ, "SIMCLUSTER_NODES": str(nodes)}, stdout=subprocess.DEVNULL, check=True
    )
