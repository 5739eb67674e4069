"""Writes a one-layer container image archive (docker-archive format, which `ctr images import`
reads) from a few host files, for the real node's own small images: no registry and no image
builder are needed for an image whose whole content is a static binary or two.

Usage:
  image_archive.py OUT.tar REFERENCE [--add SRC:DEST[:MODE]]... [--link DEST=TARGET]...
                   [--entrypoint JSON] [--cmd JSON] [--user UID]

The archive is reproducible: the same inputs give the same bytes (fixed times and owners), so the
image's digest, and with it the cache key of the caller, depends only on what is in it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path, PurePosixPath

EPOCH = 0  # fixed timestamps: the same files always give the same layer digest


def _dir_entry(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = EPOCH
    return info


def _parents(dest: PurePosixPath) -> list[str]:
    return [str(p).lstrip("/") for p in reversed(dest.parents) if str(p) != "/"]


def build_layer(adds: list[tuple[Path, PurePosixPath, int]], links: list[tuple[PurePosixPath, str]]) -> bytes:
    """An uncompressed layer tar with the given files and symlinks (parents created, root-owned)."""
    buffer = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as layer:
        for dest in sorted({d for _, d, _ in adds} | {d for d, _ in links}):
            for parent in _parents(dest):
                if parent not in seen:
                    seen.add(parent)
                    layer.addfile(_dir_entry(parent))
        for src, dest, mode in sorted(adds, key=lambda a: str(a[1])):
            data = src.read_bytes()
            info = tarfile.TarInfo(str(dest).lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, EPOCH
            layer.addfile(info, io.BytesIO(data))
        for dest, target in sorted(links, key=lambda a: str(a[0])):
            info = tarfile.TarInfo(str(dest).lstrip("/"))
            info.type, info.linkname, info.mtime, info.mode = tarfile.SYMTYPE, target, EPOCH, 0o777
            layer.addfile(info)
    return buffer.getvalue()


def image_config(layer_digest: str, entrypoint: list[str] | None, cmd: list[str] | None, user: str) -> bytes:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": entrypoint, "Cmd": cmd, "User": user, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tools/simcluster/image_archive.py"}],
    }
    return json.dumps(config, sort_keys=True).encode()


def write_archive(out: Path, reference: str, layer: bytes, config: bytes) -> None:
    layer_hex = hashlib.sha256(layer).hexdigest()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [reference], "Layers": [f"{layer_hex}/layer.tar"]}]
    files = [
        (config_name, config),
        (f"{layer_hex}/layer.tar", layer),
        ("manifest.json", json.dumps(manifest).encode()),
    ]
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.GNU_FORMAT) as archive:
        archive.addfile(_dir_entry(layer_hex))
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
            archive.addfile(info, io.BytesIO(data))
    tmp.replace(out)


def _add(spec: str) -> tuple[Path, PurePosixPath, int]:
    src, dest, *mode = spec.split(":")
    return Path(src), PurePosixPath(dest), int(mode[0], 8) if mode else 0o755


def _link(spec: str) -> tuple[PurePosixPath, str]:
    dest, target = spec.split("=", 1)
    return PurePosixPath(dest), target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("reference")
    parser.add_argument("--add", action="append", default=[], type=_add, help="SRC:DEST[:MODE]")
    parser.add_argument("--link", action="append", default=[], type=_link, help="DEST=TARGET (a symlink)")
    parser.add_argument("--entrypoint", type=json.loads)
    parser.add_argument("--cmd", type=json.loads)
    parser.add_argument("--user", default="")
    args = parser.parse_args()
    layer = build_layer(args.add, args.link)
    config = image_config("sha256:" + hashlib.sha256(layer).hexdigest(), args.entrypoint, args.cmd, args.user)
    write_archive(args.out, args.reference, layer, config)


if __name__ == "__main__":
    main()
