"""What each catalog image costs to build cold: wall seconds, CPU-seconds and sizes, as a table and JSON.

Cold means empty caches under the directory given on the command line: the image cache (GX_IMAGES_CACHE_ROOT),
Go's module and build caches (GOMODCACHE, GOCACHE) and pip's cache. The images are built in catalog order
and share those caches within the run, as a fresh CI machine would build them; ``--fresh-per-image`` gives each
image its own empty Go and pip caches instead (each image's cost on its own).

CPU-seconds are the user+system time of the build's child processes (``go``, its compilers, mmdebstrap, pip;
``getrusage(RUSAGE_CHILDREN)``) plus this process's own (layer packing and gzip): on a machine shared with
other work, CPU-seconds say more than wall seconds.

Run: .venv/bin/python benchmarks/image_builds.py /tmp/gx-image-bench [NAMES…] [--json-out FILE]
(the directory must be empty or missing; it is removed afterwards unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any

from gxlib.k8simages.catalog import select
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import ImageStore
from gxlib.progress import Progress

MIB = 1024 * 1024


def _cpu_seconds() -> tuple[float, float]:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime, own.ru_utime + own.ru_stime


def _point_caches_at(root: Path) -> None:
    """Go's and pip's caches under ``root`` (read by the build's child processes through the environment)."""
    os.environ["GOMODCACHE"] = str(root / "gomodcache")
    os.environ["GOCACHE"] = str(root / "gocache")
    os.environ["PIP_CACHE_DIR"] = str(root / "pip-cache")


def _remove_tree(path: Path) -> None:
    """Remove a directory, including the Go module cache's read-only files."""

    def _make_writable_and_retry(func: Any, target: str, _exc: Any) -> None:
        parent = os.path.dirname(target)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR)
        if os.path.isdir(target) and not os.path.islink(target):
            os.chmod(target, os.stat(target).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        func(target)

    if path.exists():
        shutil.rmtree(path, onerror=_make_writable_and_retry)  # 3.11: no onexc


def measure(scratch: Path, names: tuple[str, ...], *, fresh_per_image: bool) -> list[dict[str, Any]]:
    settings = ImageSettings(cache_root=scratch / "images")
    store = ImageStore(settings.cache_root)
    progress = Progress()
    rows: list[dict[str, Any]] = []
    _point_caches_at(scratch / "shared")
    for recipe in select(settings, names):
        if fresh_per_image:
            _remove_tree(scratch / "own")
            _point_caches_at(scratch / "own")
        children_before, own_before = _cpu_seconds()
        started = time.monotonic()
        ensured = store.ensure(recipe, progress)
        wall = time.monotonic() - started
        children_after, own_after = _cpu_seconds()
        image = ensured.image
        rows.append(
            {
                "name": recipe.name,
                "reference": image.reference,
                "wall_s": round(wall, 1),
                "cpu_s": round((children_after - children_before) + (own_after - own_before), 1),
                "cpu_children_s": round(children_after - children_before, 1),
                "gzip_mib": round(image.compressed_size / MIB, 1),
                "unpacked_mib": round(image.unpacked_size / MIB, 1),
                "built": ensured.built,
            }
        )
        print(_format_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _format_row(row: dict[str, Any]) -> str:
    return (
        f"{row['name']:<20} {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f} {row['gzip_mib']:>9.1f} "
        f"{row['unpacked_mib']:>12.1f}"
    )


def _table(rows: list[dict[str, Any]]) -> str:
    header = f"{'image':<20} {'wall s':>8} {'CPU s':>8} {'gzip MiB':>9} {'unpacked MiB':>12}"
    total = {
        "name": "total",
        "wall_s": sum(r["wall_s"] for r in rows),
        "cpu_s": sum(r["cpu_s"] for r in rows),
        "gzip_mib": sum(r["gzip_mib"] for r in rows),
        "unpacked_mib": sum(r["unpacked_mib"] for r in rows),
    }
    return "\n".join([header, *(_format_row(r) for r in rows), _format_row(total)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scratch", type=Path, help="an empty (or missing) directory for the cold caches")
    parser.add_argument("names", nargs="*", help="catalog images to build (default: all, in catalog order)")
    parser.add_argument("--fresh-per-image", action="store_true", help="empty Go and pip caches for every image")
    parser.add_argument("--json-out", type=Path, help="also write the JSON document to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (its caches and archives)")
    args = parser.parse_args()
    scratch: Path = args.scratch.resolve()
    if scratch.exists() and any(scratch.iterdir()):
        parser.error(f"{scratch} is not empty: a cold measurement needs empty caches")
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        rows = measure(scratch, tuple(args.names), fresh_per_image=args.fresh_per_image)
    finally:
        if not args.keep:
            _remove_tree(scratch)
    doc = {
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "fresh_per_image": args.fresh_per_image,
        "images": rows,
        "total_wall_s": round(sum(r["wall_s"] for r in rows), 1),
        "total_cpu_s": round(sum(r["cpu_s"] for r in rows), 1),
    }
    print(_table(rows))
    print(json.dumps(doc, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
