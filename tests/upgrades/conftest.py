"""Fixtures of the upgrade tests: a copy of the store charts the test may move to a new version (the
"target"), a failing variant of it, and helpers that read a store's Helm history.

A new chart version is made here the way a release of the project makes one: the same chart with a
bumped `version` in Chart.yaml (which changes every object's `helm.sh/chart` label, so every pod
rolls). The failing variant puts the pods of chosen stores on a node that does not exist: they are
never scheduled, so those stores never pass the health gate, as a bad release would fail them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

OLD_VERSION = yaml.safe_load((REPO / "charts" / "woocommerce" / "Chart.yaml").read_text())["version"]
NEW_VERSION = "9.9.0"  # newer than any real chart version of the project


@pytest.fixture
def charts_dir(tmp_path, settings) -> Path:
    """STORE_CHARTS_DIR: a copy of the repository's charts, for this process and (through the
    returned path) for a worker's environment."""
    target = tmp_path / "charts"
    shutil.copytree(REPO / "charts", target, ignore=shutil.ignore_patterns("ci", "README.md"))
    settings.STORE_CHARTS_DIR = target
    return target


def release_new_version(charts_dir: Path, engine: str = "woocommerce", failing_stores: tuple[int, ...] = ()) -> str:
    """Make the charts in `charts_dir` a new version; pods of `failing_stores` can then never be scheduled."""
    chart = charts_dir / engine / "Chart.yaml"
    chart.write_text(re.sub(r"(?m)^version: .*$", f"version: {NEW_VERSION}", chart.read_text()))
    if failing_stores:
        helpers = charts_dir / engine / "templates" / "_helpers.tpl"
        ids = " ".join(f'"{pk}"' for pk in failing_stores)
        define = f'{{{{- define "{engine}.scheduling" -}}}}'
        unschedulable = (
            f"{define}\n{{{{- if has .Values.store.id (list {ids}) }}}}\n"
            'nodeSelector:\n  store-orchestrator.io/test-node-that-does-not-exist: "true"\n{{- else }}'
        )
        text = helpers.read_text()
        start = text.index(define)
        end = text.index("{{- end }}\n\n", start)
        body = text[start + len(define) : end]
        helpers.write_text(text[:start] + unschedulable + body + "{{- end }}\n{{- end }}\n\n" + text[end + 12 :])
    return NEW_VERSION


def helm_history(kube_cluster, store) -> list[dict]:
    """The release's revisions, oldest first: revision, status, chart (name-version), description."""
    out = kube_cluster.run(
        kube_cluster.helm, "history", store.release_name, "-n", store.namespace, "-o", "json", "--max", "50"
    ).stdout
    return json.loads(out)


def revisions_at(history: list[dict], engine: str, version: str) -> list[dict]:
    return [entry for entry in history if entry["chart"] == f"{engine}-{version}"]
