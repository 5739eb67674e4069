"""The cluster plugin recognises the simulated cluster by its kubeconfig, also when KUBECONFIG is already
exported (as CI does after start.sh), so the checks of its pinned version run in CI too."""

from __future__ import annotations

import shutil

import pytest

from tests.plugins.simcluster import _acquire_cluster


@pytest.fixture
def simcluster_state(tmp_path, monkeypatch):
    state, bin_dir = tmp_path / "state", tmp_path / "bin"
    state.mkdir()
    bin_dir.mkdir()
    (state / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    (bin_dir / "helm").write_text("#!/bin/sh\n")
    (bin_dir / "helm").chmod(0o755)
    monkeypatch.setenv("SIMCLUSTER_STATE_DIR", str(state))
    monkeypatch.setenv("SIMCLUSTER_BIN_DIR", str(bin_dir))
    return state


def test_exported_simcluster_kubeconfig_is_the_simulated_cluster(simcluster_state, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(simcluster_state / "kubeconfig"))
    cluster = _acquire_cluster()
    assert cluster.simulated and not cluster.started_here


def test_any_other_kubeconfig_is_a_real_cluster(simcluster_state, monkeypatch, tmp_path):
    other = tmp_path / "real-cluster.kubeconfig"
    shutil.copy(simcluster_state / "kubeconfig", other)
    monkeypatch.setenv("KUBECONFIG", str(other))
    assert not _acquire_cluster().simulated
