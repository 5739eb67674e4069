"""The store charts the orchestrator would install today, and how chart versions compare.

"Target" is the version of each engine's chart in STORE_CHARTS_DIR now: the only chart a worker can
install, so the only version a store can be upgraded to. It is read from the chart's Chart.yaml and
read again when that file changes (a new orchestrator image, or charts mounted from a volume), by web
and worker processes alike. Chart versions are SemVer 2 (Helm's rule), compared as such.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import semver
import yaml
from django.conf import settings


class ChartUnavailable(Exception):
    """The engine's chart cannot be read from STORE_CHARTS_DIR (missing, unreadable, or without a version)."""


@dataclass(frozen=True)
class ChartVersion:
    version: str
    app_version: str = ""


_cache: dict[Path, tuple[int, ChartVersion]] = {}
_lock = threading.Lock()


def chart_dir(engine: str) -> Path:
    return Path(settings.STORE_CHARTS_DIR) / engine


def target(engine: str) -> ChartVersion:
    """The version of `engine`'s chart in STORE_CHARTS_DIR, cached until its Chart.yaml changes."""
    path = chart_dir(engine) / "Chart.yaml"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise ChartUnavailable(f"No chart for {engine!r} at {path.parent}: {exc.strerror}") from exc
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    try:
        meta = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ChartUnavailable(f"Cannot read {path}: {exc}") from exc
    version = str(meta.get("version") or "")
    if not is_valid(version):
        raise ChartUnavailable(f"{path} has no valid SemVer version (found {version!r})")
    found = ChartVersion(version, str(meta.get("appVersion") or ""))
    with _lock:
        _cache[path] = (stamp, found)
    return found


def is_valid(version: str) -> bool:
    return bool(version) and semver.Version.is_valid(version)


def is_older(version: str, than: str) -> bool:
    """Whether chart `version` precedes `than` (False when either is not a SemVer version: nothing is
    offered for a version nobody can compare)."""
    if not (is_valid(version) and is_valid(than)):
        return False
    return semver.Version.parse(version) < semver.Version.parse(than)


def sort_key(version: str) -> tuple:
    """Orders versions newest last; unknown or invalid ones first."""
    if is_valid(version):
        return (1, semver.Version.parse(version))
    return (0, version)
