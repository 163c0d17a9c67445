"""The runbook layer holds runbook steps and machinery only: it reaches Kubernetes, Prometheus and Alertmanager
through gxlib.platform and gxlib.monitoring, and no runbook module builds on another runbook's module."""

from __future__ import annotations

import ast
from pathlib import Path

import gxlib

PACKAGE = Path(gxlib.__file__).parent
RUNBOOK_MODULES = ("deploy_monitoring", "upgrade_chaincode", "bootstrap_system", "validate_cqrs",
                   "validate_monitoring")
TRANSPORTS = ("kubernetes", "requests", "httpx", "urllib", "urllib3")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_runbook_module_speaks_http_or_kubernetes_itself() -> None:
    offenders = {path.name: sorted(name for name in _imports(path) if name.split(".")[0] in TRANSPORTS)
                 for path in sorted((PACKAGE / "runbook").glob("*.py"))}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_runbook_module_imports_another_runbooks_module() -> None:
    for module in RUNBOOK_MODULES:
        imported = _imports(PACKAGE / "runbook" / f"{module}.py")
        others = sorted(f"gxlib.runbook.{other}" for other in RUNBOOK_MODULES
                        if other != module and f"gxlib.runbook.{other}" in imported)
        assert others == [], f"{module} imports {others}"


def test_one_module_loads_a_kubeconfig() -> None:
    loaders = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                     if "load_kube_config(" in path.read_text(encoding="utf-8"))
    assert loaders == ["platform/cluster.py"]


def test_only_the_platform_package_chooses_between_local_and_kubernetes_platforms() -> None:
    users = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                   if {"gxlib.platform.local", "gxlib.platform.kubernetes_platform"} & _imports(path))
    assert all(user.startswith("platform/") for user in users), users
