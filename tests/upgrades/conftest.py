"""Fixtures of the upgrade tests: STORE_CHARTS_DIR as a copy of the store charts that a test may move
to a new version (tests/upgrades/versions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .versions import copy_charts


@pytest.fixture
def charts_dir(tmp_path, settings) -> Path:
    """STORE_CHARTS_DIR for this process and (through the returned path) for a worker's environment."""
    settings.STORE_CHARTS_DIR = copy_charts(tmp_path)
    return settings.STORE_CHARTS_DIR
