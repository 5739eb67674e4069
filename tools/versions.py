"""Lists every image the project pins next to the newest release of its line that tools/versions.yaml
records, so a pin that falls behind is visible (``make versions``, or ``python -m tools.versions``).

Pins are read from the store charts' and the orchestrator chart's values files (every mapping with a
``repository`` and a ``tag``, ci examples included) and from the ``ARG *_IMAGE=`` defaults of the
project's Dockerfiles. Nothing is looked up online: the data file is updated by hand, deliberately.
Exits 1 when a pin has no entry in the data file (so it could fall behind unseen), 0 otherwise;
"behind" and "other line" are reported, not failed, because moving a pin is a decision.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).with_name("versions.yaml")
VALUES_FILES = ("charts/*/values.yaml", "charts/*/ci/*.yaml", "deploy/helm/*/values*.yaml", "deploy/helm/*/ci/*.yaml")
DOCKERFILES = ("deploy/Dockerfile", "deploy/images/medusa/Dockerfile")
# A tag's version: its leading dotted number (17.7-alpine -> 17.7).
DEFAULT_TAGS = r"^(?P<version>[0-9]+(\.[0-9]+)*)"
ARG_IMAGE = re.compile(r"^ARG\s+\w+_IMAGE=(?P<image>\S+)\s*$", re.M)


@dataclass(frozen=True)
class Pin:
    """One pinned image: where it is pinned, and to what."""

    repository: str  # as written, e.g. docker.io/library/postgres
    tag: str
    where: str  # file and key, e.g. charts/medusa/values.yaml postgres.image

    @property
    def short(self) -> str:
        """The repository as registries resolve it: docker.io/library/x and x are the same image."""
        return self.repository.removeprefix("docker.io/").removeprefix("library/")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _image_pins(node, where: str, path: str = "") -> list[Pin]:
    """Every mapping with a non-empty repository and tag under ``node`` (a values file)."""
    pins = []
    if isinstance(node, dict):
        if isinstance(node.get("repository"), str) and node.get("repository") and node.get("tag"):
            pins.append(Pin(node["repository"], str(node["tag"]), f"{where} {path or '.'}"))
        for key, value in node.items():
            pins += _image_pins(value, where, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            pins += _image_pins(value, where, f"{path}[{index}]")
    return pins


def find_pins(root: Path = REPO_ROOT) -> list[Pin]:
    """Every pinned image of the charts and Dockerfiles under ``root``."""
    pins = []
    for pattern in VALUES_FILES:
        for path in sorted(root.glob(pattern)):
            pins += _image_pins(yaml.safe_load(path.read_text()), str(path.relative_to(root)))
    for name in DOCKERFILES:
        for match in ARG_IMAGE.finditer((root / name).read_text()):
            if ":" not in match["image"]:
                continue  # not a pin: `scratch`, the empty image a build argument may name
            repository, _, tag = match["image"].rpartition(":")
            pins.append(Pin(repository, tag, f"{name} ARG"))
    return pins


def entry_for(pin: Pin, entries: list[dict]) -> dict | None:
    """The data file's entry for this pin: same repository, and a tag of the entry's form."""
    for entry in entries:
        if pin.short in entry["repositories"] and re.match(entry.get("tags", DEFAULT_TAGS), pin.tag):
            return entry
    return None


def status(pin: Pin, entry: dict | None) -> str:
    if entry is None:
        return "UNKNOWN: add it to tools/versions.yaml"
    if entry.get("own"):
        return "built here"
    version = re.match(entry.get("tags", DEFAULT_TAGS), pin.tag)["version"]
    line = entry["line"]
    if version != line and not version.startswith(f"{line}."):
        return f"other line ({'.'.join(version.split('.')[: line.count('.') + 1])}; tracked: {line})"
    if _version(version) < _version(entry["newest"]):
        return "BEHIND"
    if _version(version) > _version(entry["newest"]):
        return "ahead of the data file: update it"
    return "current"


def report(pins: list[Pin], data: dict) -> tuple[list[list[str]], list[Pin]]:
    """Rows of the table, and the pins the data file does not know."""
    rows, unknown = [], []
    for pin in sorted(pins, key=lambda p: (p.short, p.where)):
        entry = entry_for(pin, data["images"])
        if entry is None:
            unknown.append(pin)
        newest = "" if entry is None or entry.get("own") else f"{entry['line']}: {entry['newest']}"
        rows.append([f"{pin.short}:{pin.tag}", newest, status(pin, entry), pin.where])
    return rows, unknown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the data file (default: tools/versions.yaml)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the repository to read pins from")
    args = parser.parse_args(argv)
    data = yaml.safe_load(args.data.read_text())
    rows, unknown = report(find_pins(args.root), data)
    header = ["pinned image", "newest known (line: version)", "status", "pinned in"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"\nnewest versions as recorded on {data['checked']} in {args.data.name}; nothing was looked up online")
    for pin in unknown:
        print(f"versions: {pin.repository}:{pin.tag} ({pin.where}) has no entry in {args.data.name}", file=sys.stderr)
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
