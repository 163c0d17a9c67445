"""The services run without gxlib[runbooks] (so the images stay lean); a command that needs it names the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gxlib.extras import RUNBOOKS_EXTRA, RUNBOOKS_MODULES, MissingExtra, needs_extra_command

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("=")[0].split("[")[0].split("<")[0].strip().lower() for r in requirements}


def test_the_runbooks_extra_is_the_list_gx_names_and_the_main_dependencies_leave_it_out() -> None:
    extra = _names(PROJECT["optional-dependencies"][RUNBOOKS_EXTRA])
    assert extra == set(RUNBOOKS_MODULES.values())
    assert extra.isdisjoint(_names(PROJECT["dependencies"]))
    assert "gxlib[runbooks]" in PROJECT["optional-dependencies"]["dev"]  # make setup still installs it


# Runs gx in a fresh interpreter where the runbooks extra's modules cannot be imported.
_WITHOUT_EXTRA = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder
    BLOCKED = set(sys.argv[1].split(","))
    class Block(MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Block())
    sys.argv = ["gx", *sys.argv[2:]]
    import gxlib.cli
    gxlib.cli.main()
    """
)


def _gx_without_extra(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRA, ",".join(RUNBOOKS_MODULES), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("args", [("--help",), ("serve", "api", "--help")])
def test_gx_and_the_services_start_without_the_runbooks_extra(args: tuple[str, ...]) -> None:
    result = _gx_without_extra(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage: gx" in result.stdout


def test_a_runbook_command_without_the_extra_says_which_extra_to_install() -> None:
    result = _gx_without_extra("runbook", "run", "01-deploy-monitoring")
    assert result.returncode == 1
    assert "pip install 'gxlib[runbooks]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_services_modules_import_without_the_runbooks_extra() -> None:
    probe = _WITHOUT_EXTRA.replace(
        "import gxlib.cli\ngxlib.cli.main()",
        "import gxlib.backend.api, gxlib.backend.service, gxlib.backend.fabric_tx, gxlib.backend.fabric_events\n"
        "import gxchaincode.__main__\n",
    )
    result = subprocess.run([sys.executable, "-c", probe, ",".join(RUNBOOKS_MODULES)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_the_stand_in_command_raises_the_missing_extra_and_other_import_errors_stay_visible() -> None:
    group = click.Group("gx")
    group.add_command(needs_extra_command("runbook", ModuleNotFoundError("no pandas", name="pandas")))
    result = CliRunner().invoke(group, ["runbook", "list", "--json"])
    assert isinstance(result.exception, MissingExtra)
    assert result.exception.extra == "runbooks" and result.exception.missing == "pandas"
    with pytest.raises(ModuleNotFoundError):
        needs_extra_command("runbook", ModuleNotFoundError("no module", name="gxlib.typo"))
