"""pytest plugin: the Kubernetes cluster that tests run against.

Register it with ``pytest_plugins = ["tests.plugins.simcluster"]`` (or ``-p tests.plugins.simcluster``).

* Marker ``cluster``: the test needs a cluster. Marked tests get the ``kube_cluster`` fixture
  automatically; they are never skipped: if no cluster can be had, they error.
* Marker ``realnode``: the test needs real containers, on the simulated cluster's real node
  (``SIMCLUSTER_REAL_NODE=1``, tools/simcluster/realnode.sh). Implies ``cluster``. When such tests
  are collected and this session starts the cluster, it starts it with the real node.
* Session fixture ``kube_cluster`` -> :class:`KubeCluster`.
  - ``KUBECONFIG`` set in the environment: that cluster is used as it is (a real cluster, or the
    simulated one started beforehand, as ``.ci/run`` does). Nothing is started or stopped.
  - otherwise ``tools/simcluster/start.sh`` builds (cached) and starts the simulated cluster once per
    session, or reuses it when it already runs; it is stopped at session end only if this session
    started it (set ``SIMCLUSTER_KEEP=1`` to leave it running).
  The fixture also puts the bin directory (helm, kubectl) first on ``os.environ["PATH"]`` and sets
  ``os.environ["KUBECONFIG"]``, so in-process code (pyhelm3, the kubernetes client) finds them; both
  are restored at session end.
* Session fixture ``kube_api_client``: a ``kubernetes.client.ApiClient`` for that cluster (admin).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SIMCLUSTER_DIR = REPO_ROOT / "tools" / "simcluster"


@dataclasses.dataclass(frozen=True)
class KubeCluster:
    """Where the cluster is and how to reach it from tests and subprocesses."""

    kubeconfig: str  # path of the kubeconfig file
    bin_dir: str  # directory with helm, kubectl (and, when built here, kwokctl and the control plane)
    helm: str  # path of the helm binary
    env: dict[str, str]  # environment for subprocesses: os.environ + KUBECONFIG + PATH with bin_dir first
    simulated: bool  # True for the simulated cluster of start.sh (started by this session or before)
    started_here: bool  # True when this session started it (and will stop it)

    @property
    def kubectl(self) -> str:
        return str(Path(self.bin_dir) / "kubectl")

    def run(self, *args: str, check: bool = True, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
        """Run a command (e.g. ``cluster.run(cluster.helm, "list", "-A")``) with :attr:`env`, capturing text output."""
        return subprocess.run(
            list(args),
            env=self.env,
            check=check,
            timeout=timeout,
            capture_output=True,
            text=True,
            **kwargs,
        )


class ClusterUnavailable(RuntimeError):
    """The cluster could not be started or reached; tests that need it error with this."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cluster: needs a Kubernetes cluster (the simulated one, or the one KUBECONFIG names); never skipped",
    )
    config.addinivalue_line(
        "markers",
        "realnode: needs real containers on the simulated cluster's real node (SIMCLUSTER_REAL_NODE=1); "
        "implies cluster; never skipped",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("realnode") is not None for item in items):
        # start.sh, if this session runs it, brings up the real node as well.
        os.environ.setdefault("SIMCLUSTER_REAL_NODE", "1")
    for item in items:
        if item.get_closest_marker("realnode") is not None and item.get_closest_marker("cluster") is None:
            item.add_marker(pytest.mark.cluster)
        if item.get_closest_marker("cluster") is not None:
            names = getattr(item, "fixturenames", None)
            if names is not None and "kube_cluster" not in names:
                names.insert(0, "kube_cluster")


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    script = SIMCLUSTER_DIR / name
    try:
        return subprocess.run([str(script), *args], capture_output=True, text=True, check=False)
    except OSError as exc:  # missing or not executable
        raise ClusterUnavailable(f"cannot run {script}: {exc}") from exc


def _parse_exports(stdout: str) -> tuple[dict[str, str], str | None]:
    """Reads start.sh's ``export NAME=value`` lines and its ``# simcluster: started|reused`` line."""
    exports: dict[str, str] = {}
    state = None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("# simcluster:"):
            state = line.split(":", 1)[1].strip()
        elif line.startswith("export "):
            for word in shlex.split(line[len("export ") :]):
                key, _, value = word.partition("=")
                exports[key] = value
    if "PATH" in exports:
        exports["PATH"] = exports["PATH"].split(":$PATH", 1)[0]
    return exports, state


def simcluster_kubeconfig_path() -> Path:
    """Where start.sh writes the kubeconfig (same defaults as tools/simcluster/common.sh)."""
    state = os.environ.get("SIMCLUSTER_STATE_DIR")
    if not state:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        state = str(Path(xdg) / "store-orchestrator" / "simcluster")
    return Path(state) / "kubeconfig"


def _bin_dir_for_external_cluster() -> str:
    """helm/kubectl for a user-provided cluster: SIMCLUSTER_BIN_DIR, else build.sh (cached), else PATH."""
    if os.environ.get("SIMCLUSTER_BIN_DIR"):
        return os.environ["SIMCLUSTER_BIN_DIR"]
    result = _run_script("build.sh")
    if result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip().splitlines()[-1]
    helm = shutil.which("helm")
    if helm:
        return str(Path(helm).parent)
    raise ClusterUnavailable(
        "no helm: tools/simcluster/build.sh failed and helm is not on PATH:\n" + _tail(result.stderr)
    )


def _acquire_cluster() -> KubeCluster:
    external = os.environ.get("KUBECONFIG")
    if external:
        for path in external.split(os.pathsep):
            if path and not Path(path).is_file():
                raise ClusterUnavailable(f"KUBECONFIG names {path}, which does not exist")
        kubeconfig, bin_dir, started, simulated = (
            external,
            _bin_dir_for_external_cluster(),
            False,
            # start.sh's own kubeconfig (CI exports it before pytest): still the simulated cluster, so
            # checks of its pinned version and shape apply.
            Path(external).resolve() == simcluster_kubeconfig_path().resolve(),
        )
    else:
        result = _run_script("start.sh")
        if result.returncode != 0:
            raise ClusterUnavailable(
                f"tools/simcluster/start.sh failed (exit {result.returncode}):\n{_tail(result.stderr)}"
            )
        exports, state = _parse_exports(result.stdout)
        if "KUBECONFIG" not in exports or "PATH" not in exports:
            raise ClusterUnavailable(f"start.sh printed no KUBECONFIG/PATH exports:\n{result.stdout}")
        kubeconfig, bin_dir, started, simulated = (
            exports["KUBECONFIG"],
            exports["PATH"],
            state == "started",
            True,
        )
    helm = Path(bin_dir) / "helm"
    if not helm.exists():
        found = shutil.which("helm")
        if not found:
            raise ClusterUnavailable(f"no helm in {bin_dir} nor on PATH")
        helm = Path(found)
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return KubeCluster(
        kubeconfig=kubeconfig,
        bin_dir=bin_dir,
        helm=str(helm),
        env=env,
        simulated=simulated,
        started_here=started,
    )


@pytest.fixture(scope="session")
def kube_cluster() -> KubeCluster:
    cluster = _acquire_cluster()
    saved = {key: os.environ.get(key) for key in ("KUBECONFIG", "PATH")}
    os.environ["KUBECONFIG"] = cluster.kubeconfig
    os.environ["PATH"] = cluster.env["PATH"]
    try:
        yield cluster
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if cluster.started_here and not os.environ.get("SIMCLUSTER_KEEP"):
            result = _run_script("stop.sh")
            if result.returncode != 0:
                # Teardown problems must be visible but not hide test results.
                print(f"simcluster: stop.sh failed (exit {result.returncode}):\n{_tail(result.stderr)}")


@pytest.fixture(scope="session")
def kube_api_client(kube_cluster: KubeCluster):
    from kubernetes import config as kube_config

    client = kube_config.new_client_from_config(config_file=kube_cluster.kubeconfig)
    try:
        yield client
    finally:
        client.close()
