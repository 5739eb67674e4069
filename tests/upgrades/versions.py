"""Chart versions for the upgrade tests: a copy of the store charts that a test may move to a new version
(the "target"), a failing variant of it, and readers of a store's Helm history (shared with the chaos
suite's upgrade kills).

A new chart version is made here the way a release of the project makes one: the same chart with a
bumped `version` in Chart.yaml (which changes every object's `helm.sh/chart` label, so every pod
rolls). The failing variant puts the pods of chosen stores on a node that does not exist: they are
never scheduled, so those stores never pass the health gate, as a bad release would fail them.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import yaml

from tests.conftest import REPO

OLD_VERSION = yaml.safe_load((REPO / "charts" / "woocommerce" / "Chart.yaml").read_text())["version"]
NEW_VERSION = "9.9.0"  # newer than any real chart version of the project


def copy_charts(directory: Path) -> Path:
    """A copy of the repository's store charts under `directory`, to be STORE_CHARTS_DIR."""
    target = directory / "charts"
    shutil.copytree(REPO / "charts", target, ignore=shutil.ignore_patterns("ci", "README.md"))
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


def wait_until(check, timeout: float, what: str, interval: float = 0.5):
    """Poll `check()` until it returns something truthy; fail saying `what` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def pending_releases(kube_cluster, namespaces: set[str]) -> list[str]:
    listed = kube_cluster.run(kube_cluster.helm, "list", "-A", "--pending", "-o", "json").stdout
    return [f"{r['namespace']}/{r['name']}" for r in json.loads(listed or "[]") if r["namespace"] in namespaces]
