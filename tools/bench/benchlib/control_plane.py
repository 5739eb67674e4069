"""The cluster's side of a fleet run: what the control plane spends while each column works, and how big
the cluster's store (etcd) grows.

CPU and memory are read from /proc for the control-plane processes running on this machine (the
simulated cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok); on a remote
cluster they are absent. etcd's size and the number of objects come from the API server's own metrics
(`apiserver_storage_size_bytes`, `apiserver_resource_objects`), which any cluster serves to an admin.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

# /proc/<pid>/comm is cut at 15 characters.
COMPONENTS = {
    "etcd": "etcd",
    "kube-apiserver": "kube-apiserver",
    "kube-controller": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler",
    "kwok-controller": "kwok",
}
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def read_components(root: str = "", proc: Path = Path("/proc")) -> dict[str, tuple[float, int]]:
    """Per component: (CPU seconds so far, resident bytes now), summed over its processes; with `root`, only
    processes whose command line names it (the simulated cluster's state directory: another cluster on
    the same machine is not counted)."""
    out: dict[str, tuple[float, int]] = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            comm = (proc / entry / "comm").read_text().strip()
            if comm not in COMPONENTS:
                continue
            if root and root not in (proc / entry / "cmdline").read_text(errors="replace"):
                continue
            rest = (proc / entry / "stat").read_text().rsplit(")", 1)[-1].split()
            rss = int((proc / entry / "statm").read_text().split()[1]) * _PAGE
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError, ValueError):
            continue
        cpu = (int(rest[11]) + int(rest[12])) / _TICK
        name = COMPONENTS[comm]
        have_cpu, have_rss = out.get(name, (0.0, 0))
        out[name] = (have_cpu + cpu, have_rss + rss)
    return out


def parse_metrics(text: str) -> dict:
    """etcd's size and the objects the API server stores, from its Prometheus text."""
    size = 0.0
    objects: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("apiserver_storage_size_bytes"):
            size += float(line.rsplit(" ", 1)[1])
        elif line.startswith("apiserver_resource_objects{"):
            labels, value = line[len("apiserver_resource_objects{") :].rsplit("} ", 1)
            resource = dict(part.split("=", 1) for part in labels.split(",")).get("resource", '""').strip('"')
            objects[resource] = objects.get(resource, 0) + float(value)
    return {
        "etcd_size_mib": round(size / 2**20, 1) if size else None,
        "objects": int(sum(objects.values())),
        "pods": int(objects.get("pods", 0)),
        "namespaces": int(objects.get("namespaces", 0)),
    }


class ControlPlaneSampler(threading.Thread):
    """Samples the control plane every `interval` seconds; `mark(name)` … `report(name)` cover one section."""

    def __init__(self, kubeconfig: str, interval: float = 2.0):
        super().__init__(name="control-plane-sampler", daemon=True)
        self.kubeconfig = kubeconfig
        self.root = str(Path(kubeconfig).resolve().parent)  # the simulated cluster's state directory
        self.interval = interval
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._marks: dict[str, dict[str, float]] = {}  # section -> CPU seconds per component at its start
        self._peaks: dict[str, dict[str, int]] = {}  # open section -> peak resident bytes per component
        self._api = None

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def sample(self) -> dict[str, tuple[float, int]]:
        now = read_components(self.root)
        with self._lock:
            for peaks in self._peaks.values():
                for name, (_, rss) in now.items():
                    peaks[name] = max(peaks.get(name, 0), rss)
        return now

    def mark(self, section: str) -> None:
        now = self.sample()
        with self._lock:
            self._marks[section] = {name: cpu for name, (cpu, _) in now.items()}
            self._peaks[section] = {name: rss for name, (_, rss) in now.items()}

    def report(self, section: str) -> dict:
        """CPU seconds and peak memory of each component since mark(section), and the cluster's size now."""
        now = self.sample()
        with self._lock:
            start = self._marks.pop(section, {})
            peaks = self._peaks.pop(section, {})
        components = {
            name: {"cpu_seconds": round(cpu - start.get(name, cpu), 1), "peak_rss_mib": round(peaks[name] / 2**20)}
            for name, (cpu, _) in sorted(now.items())
            if name in peaks
        }
        return {"components": components, **self.cluster_size()}

    def cluster_size(self) -> dict:
        try:
            if self._api is None:
                from kubernetes import config

                self._api = config.new_client_from_config(config_file=self.kubeconfig)
            method, url, headers, _, _ = self._api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
            response = self._api.call_api(method, url, headers, _request_timeout=30)
            response.read()
            return parse_metrics(response.data.decode())
        except Exception as exc:  # noqa: BLE001 (a figure missing from the report, not a failed run)
            return {"etcd_size_mib": None, "objects": None, "error": f"{type(exc).__name__}: {exc}"[:200]}

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
