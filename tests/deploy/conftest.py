"""Fixtures for the orchestrator's own chart: the helm binary and rendering the chart to objects.
Acting as the chart's ServiceAccount on the cluster (``orchestrator_identity``) comes from
tests/deploy/identity.py, a plugin of the whole suite."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .identity import CHART_DIR, REPO_ROOT, kubernetes_version

LOCAL_VALUES = CHART_DIR / "values.yaml"
PROD_VALUES = CHART_DIR / "values-prod.yaml"
RELEASE = "so"
NAMESPACE = "store-orchestrator"

Render = Callable[..., list[dict]]


def _find_helm() -> str | None:
    """The pinned helm of the simulated cluster (built by tools/simcluster/build.sh), else PATH's."""
    cache = os.environ.get("SIMCLUSTER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "store-orchestrator", "simcluster"
    )
    candidates = [os.environ.get("SIMCLUSTER_BIN_DIR", ""), os.path.join(cache, "bin")]
    for directory in candidates:
        if directory and os.access(os.path.join(directory, "helm"), os.X_OK):
            return os.path.join(directory, "helm")
    build = subprocess.run(
        [str(REPO_ROOT / "tools" / "simcluster" / "build.sh")], capture_output=True, text=True, check=False
    )
    if build.returncode == 0 and build.stdout.strip():
        helm = Path(build.stdout.strip().splitlines()[-1]) / "helm"
        if helm.exists():
            return str(helm)
    return shutil.which("helm")


@pytest.fixture(scope="session")
def helm_bin() -> str:
    helm = _find_helm()
    if helm is None:
        pytest.fail("no helm: run tools/simcluster/build.sh (or put helm on PATH)")
    return helm


def run_helm(helm: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False, env=env)


@pytest.fixture(scope="session")
def render(helm_bin) -> Render:
    """render(*values_files, sets=["key=value"], namespace=..., release=...) -> the chart's objects (hooks too)."""

    def _render(*values_files: Path, sets: list[str] | None = None, namespace=NAMESPACE, release=RELEASE):
        args = ["template", release, str(CHART_DIR), "--namespace", namespace, "--kube-version", kubernetes_version()]
        for path in values_files:
            args += ["--values", str(path)]
        for item in sets or []:
            args += ["--set", item]
        result = run_helm(helm_bin, *args)
        if result.returncode != 0:
            raise AssertionError(f"helm template failed:\n{result.stderr}")
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


@pytest.fixture(scope="session")
def local_objects(render) -> list[dict]:
    return render(LOCAL_VALUES)


@pytest.fixture(scope="session")
def prod_objects(render) -> list[dict]:
    return render(LOCAL_VALUES, PROD_VALUES)


# --- small readers of rendered objects ------------------------------------------------------------


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict], kind: str, suffix: str) -> dict:
    """The one object of `kind` whose name ends with `suffix` (e.g. "-web")."""
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"expected one {kind} named *{suffix}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    """Pod specs of every workload, by "Kind/name"."""
    specs = {}
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs[f"{o['kind']}/{o['metadata']['name']}"] = o["spec"]["template"]["spec"]
        elif o["kind"] == "Pod":
            specs[f"Pod/{o['metadata']['name']}"] = o["spec"]
    return specs


def containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def env_of(container: dict) -> dict[str, dict]:
    """name -> the EnvVar (with "value" or "valueFrom")."""
    return {e["name"]: e for e in container.get("env", [])}
