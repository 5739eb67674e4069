"""Tests of the per-store Helm charts, and the few helpers they share: where the charts are and
which helm binary runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"


def chart_dirs() -> list[Path]:
    """Every chart under charts/ (a directory with a Chart.yaml), so a new engine is covered
    without touching the tests."""
    return sorted(path.parent for path in CHARTS_DIR.glob("*/Chart.yaml"))


def ci_values_files(chart: Path) -> list[Path]:
    return sorted((chart / "ci").glob("*-values.yaml"))


@cache
def helm_binary() -> str:
    """helm from SIMCLUSTER_BIN_DIR, else from tools/simcluster/build.sh (cached build), else
    PATH. Never skips: without helm the chart checks must fail, not pass silently."""
    bin_dir = os.environ.get("SIMCLUSTER_BIN_DIR")
    if not bin_dir:
        build = subprocess.run(
            [str(REPO_ROOT / "tools" / "simcluster" / "build.sh")],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode == 0 and build.stdout.strip():
            bin_dir = build.stdout.strip().splitlines()[-1]
    if bin_dir and (Path(bin_dir) / "helm").exists():
        return str(Path(bin_dir) / "helm")
    found = shutil.which("helm")
    if found:
        return found
    raise RuntimeError("no helm binary: tools/simcluster/build.sh failed and none is on PATH")


def helm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs helm without a cluster (lint, template), capturing text output; never raises on exit code."""
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False, timeout=timeout)
