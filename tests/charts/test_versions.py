"""``make versions`` (tools/versions.py): every image pinned in the store charts, the orchestrator
chart and the Dockerfiles has an entry in tools/versions.yaml, so none can fall behind unseen; and the
report tells current, behind and other-line pins apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.charts import REPO_ROOT
from tools import versions


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.versions", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def test_every_pinned_image_has_an_entry():
    pins = versions.find_pins()
    where = {pin.where.split()[0] for pin in pins}
    # The scan reaches every place that pins an image.
    assert {"charts/woocommerce/values.yaml", "charts/medusa/values.yaml"} <= where
    assert {"deploy/helm/store-orchestrator/values.yaml", "deploy/helm/store-orchestrator/values-prod.yaml"} <= where
    assert set(versions.DOCKERFILES) <= where
    data = yaml.safe_load(versions.DATA.read_text())
    missing = [
        f"{pin.repository}:{pin.tag} ({pin.where})" for pin in pins if versions.entry_for(pin, data["images"]) is None
    ]
    assert not missing, f"add these to tools/versions.yaml: {missing}"
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    for pin in pins:
        assert f"{pin.short}:{pin.tag}" in result.stdout


def test_the_store_charts_pin_the_newest_patch_they_know_of():
    """The store charts' own images are current with the data file (the orchestrator chart's are
    another matter: the report shows them, whatever they are)."""
    data = yaml.safe_load(versions.DATA.read_text())
    for pin in versions.find_pins():
        if pin.where.startswith("charts/"):
            assert versions.status(pin, versions.entry_for(pin, data["images"])) == "current", pin


def test_a_pin_missing_from_the_data_file_fails_the_report(tmp_path: Path):
    data = yaml.safe_load(versions.DATA.read_text())
    data["images"] = [entry for entry in data["images"] if entry["name"] != "mariadb"]
    partial = tmp_path / "versions.yaml"
    partial.write_text(yaml.safe_dump(data))
    result = run("--data", str(partial))
    assert result.returncode == 1
    assert "mariadb:11.8.8 (charts/woocommerce/values.yaml mariadb.image) has no entry" in result.stderr


def test_behind_and_other_line_are_told_apart():
    entry = {"repositories": ["postgres"], "line": "17", "newest": "17.7"}
    pin = versions.Pin
    assert versions.status(pin("docker.io/library/postgres", "17.7-alpine", "x"), entry) == "current"
    assert versions.status(pin("postgres", "17.6-alpine", "x"), entry) == "BEHIND"
    assert versions.status(pin("postgres", "16.9-alpine", "x"), entry).startswith("other line (16")
    assert versions.status(pin("postgres", "17.10", "x"), entry).startswith("ahead")
