"""Flux's source-controller and helm-controller as local processes: built and cached by build.sh,
their CRDs installed from the same pinned modules, run against a kubeconfig, measured from /proc.

Each controller runs as one process in a session of its own (so a stop takes nothing else with it),
logs to a file, listens only on loopback ports chosen at start, and runs without leader election:
one instance per run, as in the benchmark Flux published.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

FLUX_DIR = Path(__file__).resolve().parent
_TICK = os.sysconf("SC_CLK_TCK")


def build() -> Path:
    """Build both controllers (cached; several minutes cold, seconds warm) and return the bin directory.

    build.sh prints a line per step with its expected time on stderr, which is passed through.
    """
    result = subprocess.run(
        [str(FLUX_DIR / "build.sh")], stdout=subprocess.PIPE, stderr=None, text=True, check=False, timeout=3600
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"tools/flux/build.sh exited {result.returncode}; its output is above")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- CRDs ------------------------------------------------------------------------------------------
def install_crds(api_client, bin_dir: Path, timeout: float = 60) -> list[str]:
    """Create or replace the controllers' CRDs (idempotent) and wait until the API server serves them.

    Bodies go out and come back as plain JSON (`_preload_content=False`): the client's CRD model
    rejects some valid schemas on the way back.
    """
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted(bin_dir.glob("*-crds/*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            if body:
                _apply_crd(ext, body)
                names.append(body["metadata"]["name"])
    if not names:
        raise RuntimeError(f"no CRD manifests under {bin_dir}/*-crds; run tools/flux/build.sh again")
    deadline = time.monotonic() + timeout
    for name in names:
        while not _established(ext, name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout:.0f}s")
            time.sleep(0.2)
    return names


def _apply_crd(ext, body: dict) -> None:
    from kubernetes.client.exceptions import ApiException

    name = body["metadata"]["name"]
    try:
        ext.create_custom_resource_definition(body, _preload_content=False)
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = json.loads(ext.read_custom_resource_definition(name, _preload_content=False).data)
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        ext.replace_custom_resource_definition(name, body, _preload_content=False)


def _established(ext, name: str) -> bool:
    crd = json.loads(ext.read_custom_resource_definition(name, _preload_content=False).data)
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


# --- processes -------------------------------------------------------------------------------------
class ControllerProcess:
    """One controller process, its health endpoint, and what it cost (CPU seconds, peak RSS)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, health_port: int):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.health_url = f"http://127.0.0.1:{health_port}/readyz"
        self.popen: subprocess.Popen | None = None
        self._last_usage = (0.0, 0.0)  # (CPU seconds, peak RSS MiB), kept for after the process is gone

    def start(self) -> ControllerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as response:  # noqa: S310 (loopback)
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")

    def usage(self) -> tuple[float, float]:
        """CPU seconds (user + system) and peak RSS (VmHWM, MiB) so far; the last reading once it exited."""
        if self.alive():
            assert self.popen is not None
            try:
                stat = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[-1].split()
                status = Path(f"/proc/{self.popen.pid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                return self._last_usage
            cpu = (int(stat[11]) + int(stat[12])) / _TICK
            hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
            self._last_usage = (cpu, hwm / 1024)
        return self._last_usage

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (the manager finishes in-flight reconciles), SIGKILL after `timeout`."""
        if self.popen is None:
            return
        self.usage()
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


def source_controller(
    bin_dir: Path, env: dict[str, str], log_dir: Path, storage: Path, concurrent: int, selector: str
) -> ControllerProcess:
    """source-controller: fetches the chart from the Helm repository, serves it as an artifact on loopback."""
    storage_port, health_port = free_port(), free_port()
    argv = [
        str(bin_dir / "source-controller"),
        f"--storage-path={storage}",
        f"--storage-addr=127.0.0.1:{storage_port}",
        f"--storage-adv-addr=127.0.0.1:{storage_port}",
        f"--metrics-addr=127.0.0.1:{free_port()}",
        f"--health-addr=127.0.0.1:{health_port}",
        f"--concurrent={concurrent}",
        f"--watch-label-selector={selector}",
    ]
    return ControllerProcess("source-controller", argv, env, log_dir / "source-controller.log", health_port)


def helm_controller(
    bin_dir: Path, env: dict[str, str], log_dir: Path, concurrent: int, selector: str
) -> ControllerProcess:
    """helm-controller: installs, tests and uninstalls each HelmRelease with the Helm SDK, `concurrent` at once."""
    health_port = free_port()
    argv = [
        str(bin_dir / "helm-controller"),
        f"--metrics-addr=127.0.0.1:{free_port()}",
        f"--health-addr=127.0.0.1:{health_port}",
        f"--concurrent={concurrent}",
        f"--watch-label-selector={selector}",
    ]
    return ControllerProcess("helm-controller", argv, env, log_dir / "helm-controller.log", health_port)


def start_all(processes: list[ControllerProcess], log: Callable[[str], None]) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.wait_ready()
        log(f"{process.name} ready (log: {process.log_path})")
