"""``gx k8s images``: list the project's container images, build the missing ones with ``--build``, and remove
the cached builds of older inputs with ``--prune``.

Thin: it reads the catalog and the cache (gxlib.k8simages.catalog, .store) and prints. Mounted in the ``gx k8s``
group by gxlib/cli.py.
"""

from __future__ import annotations

import json
from typing import Any

import click

from gxlib.k8simages.catalog import select
from gxlib.k8simages.recipe import input_digest, reference_of
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import ImageStore
from gxlib.progress import Progress


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


@click.command("images")
@click.argument("names", nargs=-1)
@click.option("--build", "build", is_flag=True, help="build every listed image whose inputs have no cached archive")
@click.option(
    "--prune",
    is_flag=True,
    help="remove the cached builds whose inputs are no longer this checkout's catalog (older tags), and say what "
    "that freed (another checkout sharing the cache may still use them: it rebuilds them when it needs them)",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON document (progress goes to stderr)")
def images_command(names: tuple[str, ...], build: bool, prune: bool, as_json: bool) -> None:
    """List the locally built images (all, or NAMES): reference (tag = start of the input digest), size, state.

    State is `cached` (an archive for the current inputs exists), `built` (built by this run) or `missing`
    (shown as "not built"). Import an archive with `ctr -n k8s.io images import <archive>`.
    """
    settings = ImageSettings()
    store = ImageStore(settings.cache_root)
    progress = Progress()
    rows: list[dict[str, Any]] = []
    recipes = select(settings, names)
    pruned = store.prune(recipes) if prune else []
    for recipe in recipes:
        reference = reference_of(recipe)
        row: dict[str, Any] = {
            "name": recipe.name,
            "reference": str(reference),
            "tag": reference.tag,
            "input_digest": input_digest(recipe),
            "inputs": dict(recipe.inputs()),
        }
        image = store.cached(recipe)
        state = "cached" if image is not None else "missing"
        if image is None and build:
            ensured = store.ensure(recipe, progress)
            image, state = ensured.image, ("built" if ensured.built else "cached")
        row.update(
            state=state,
            archive=str(image.archive) if image else None,
            manifest_digest=image.manifest_digest if image else None,
            compressed_size=image.compressed_size if image else None,
            unpacked_size=image.unpacked_size if image else None,
            build_seconds=image.build_seconds if image else None,
        )
        rows.append(row)
    freed = sum(entry.size for entry in pruned)
    if as_json:
        doc: dict[str, Any] = {"cache_root": str(settings.cache_root), "images": rows}
        if prune:
            doc["pruned"] = [entry.to_json() for entry in pruned]
            doc["freed_bytes"] = freed
        click.echo(json.dumps(doc, indent=2))
        return
    for entry in pruned:
        click.echo(f"pruned {entry.name}:{entry.tag} ({_mib(entry.size)}) {entry.path}")
    if prune:
        click.echo(f"pruned {len(pruned)} cached build(s), freed {_mib(freed)}")
    for row in rows:
        if row["state"] == "missing":
            click.echo(f"{row['name']:<20} {row['reference']:<58} not built")
            continue
        click.echo(
            f"{row['name']:<20} {row['reference']:<58} {_mib(row['compressed_size']):>11} (unpacked "
            f"{_mib(row['unpacked_size'])})  {row['state']}"
        )
