"""Dependencies inside gxlib point one way: runbooks → platform/backend/monitoring → fabric/devnet → config.

Every import of every module under gxlib/ is read with ``ast`` (imports inside functions and
``TYPE_CHECKING`` blocks too: they are dependencies all the same) and checked against the layer of the
importing package. A new top-level package or module must be given a layer here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import gxlib

GXLIB = Path(gxlib.__file__).parent

# Lower numbers sit lower; a package may import from its own layer and the layers below it.
LAYERS: dict[str, int] = {
    # foundation: settings, error base, progress reporting, the cross-process lock, private files, optional extras
    "config": 0, "errors": 0, "progress": 0, "filelock": 0, "files": 0, "extras": 0,
    # the ledger: the Gateway client, the local Fabric network, the Kubernetes binaries
    "fabric": 1, "devnet": 1, "k8sbuild": 1, "k8simages": 1,
    # what runs on the ledger and watches it
    "chaincode": 2, "backend": 2, "monitoring": 2, "platform": 2,
    # what an operator runs
    "runbook": 3, "bench": 3,
    "demo": 4, "demo_k8s": 4, "cli": 4,
    # a real single-node cluster on this host, made of the Kubernetes binaries (k8sbuild) and images (k8simages)
    "k8scluster": 1,
    # the devnet overlay on that cluster: it may use the platform and backend layers; only the CLI and the demo
    # import it (the runbooks reach Kubernetes through gxlib.platform)
    "k8sdeploy": 3,
}
# Packages of one layer that must still not reach each other. The monitoring catalog is the shared vocabulary
# that the backend declares its metrics from, so monitoring sits beside the backend and may not lean on it.
FORBIDDEN_IN_LAYER: dict[str, frozenset[str]] = {
    "monitoring": frozenset({"backend", "platform", "chaincode"}),
    "fabric": frozenset({"devnet", "k8sbuild"}),
    "runbook": frozenset({"bench", "k8sdeploy"}),
    "bench": frozenset({"runbook", "k8sdeploy"}),
    "k8sdeploy": frozenset({"runbook", "bench"}),
}


def top_level_name(path: Path) -> str:
    """The gxlib package or module a source file belongs to (``gxlib/fabric/gateway.py`` → ``fabric``)."""
    parts = path.relative_to(GXLIB).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_gxlib_modules(path: Path, root: Path = GXLIB) -> Iterator[str]:
    """The dotted names of every gxlib module ``path`` (a file under ``root``, the gxlib package directory)
    imports, relative imports resolved."""
    package = ("gxlib", *path.relative_to(root).parent.parts)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "gxlib")
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module.split(".") if node.module else ())))
            if module.split(".")[0] != "gxlib":
                continue
            yield module
            # ``from gxlib import backend`` imports the package gxlib.backend.
            yield from (f"{module}.{alias.name}" for alias in node.names)


def dependencies(name: str) -> dict[str, set[str]]:
    """Per other top-level gxlib package or module that ``name`` imports: the files that import it."""
    files = [GXLIB / f"{name}.py"] if (GXLIB / f"{name}.py").is_file() else sorted((GXLIB / name).rglob("*.py"))
    found: dict[str, set[str]] = {}
    for path in files:
        for module in imported_gxlib_modules(path):
            parts = module.split(".")
            if len(parts) < 2 or parts[1] not in LAYERS or parts[1] == name:
                continue  # the gxlib root (``__version__``) or the package itself
            found.setdefault(parts[1], set()).add(str(path.relative_to(GXLIB.parent)))
    return found


def top_level_names() -> list[str]:
    return sorted({top_level_name(path) for path in GXLIB.rglob("*.py")} - {"__init__"})


def test_every_gxlib_package_has_a_layer() -> None:
    assert set(top_level_names()) == set(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_package_imports_nothing_from_a_higher_layer_or_a_forbidden_neighbour(name: str) -> None:
    forbidden = {other for other, layer in LAYERS.items() if layer > LAYERS[name]} | FORBIDDEN_IN_LAYER.get(
        name, frozenset())
    violations = {other: sorted(files) for other, files in dependencies(name).items() if other in forbidden}
    assert not violations, f"gxlib.{name} (layer {LAYERS[name]}) must not import {violations}"


def test_the_import_walk_sees_absolute_relative_lazy_and_package_imports(tmp_path: Path) -> None:
    probe = tmp_path / "gxlib" / "monitoring" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "import gxlib.backend.settings\n"
        "from gxlib import platform\n"
        "from ..runbook import session\n"
        "from . import catalog\n"
        "def later():\n"
        "    from gxlib.bench.gateway import run_gateway_bench\n",
        encoding="utf-8")
    modules = set(imported_gxlib_modules(probe, root=tmp_path / "gxlib"))
    assert {"gxlib.backend.settings", "gxlib.platform", "gxlib.runbook.session", "gxlib.monitoring.catalog",
            "gxlib.bench.gateway"} <= modules
