"""environment.yml (conda) must list exactly the dependencies of pyproject.toml (runtime + dev)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _normalise(requirement: str) -> tuple[str, str]:
    match = re.match(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*)", requirement)
    assert match, requirement
    name = re.sub(r"[-_.]+", "-", match.group(1).split("[")[0]).lower()
    return name, match.group(2).replace(" ", "")


def _pyproject_requirements() -> set[tuple[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    # `gxlib[runbooks]` in an extra names another extra of this project (listed above), not a package.
    return {_normalise(r) for r in wanted if _normalise(r)[0] != project["name"]}


def _conda_requirements() -> tuple[set[tuple[str, str]], str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    found: set[tuple[str, str]] = set()
    python = ""
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # a `pip:` section for packages conda-forge lacks
            found |= {_normalise(r) for r in dep.get("pip", [])}
            continue
        name, spec = _normalise(dep.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=]", dep) else dep)
        if name == "python":
            python = spec
        elif name != "pip":
            found.add((name, spec))
    return found, python


def test_environment_file_lists_the_same_dependencies_as_pyproject() -> None:
    conda, _ = _conda_requirements()
    pyproject = _pyproject_requirements()
    assert conda - pyproject == set(), "in environment.yml but not in pyproject.toml"
    assert pyproject - conda == set(), "in pyproject.toml but not in environment.yml"


def test_environment_file_pins_python_311() -> None:
    _, python = _conda_requirements()
    assert python == "==3.11"


def test_environment_file_is_a_named_conda_env_on_conda_forge() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "gxlib"
    assert "conda-forge" in env["channels"]
