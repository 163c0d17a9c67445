"""The chaincode installs on its own (`pip install ./chaincode`): no gxlib, pandas, plotly or JupyterLab."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("gxlib", "pandas", "plotly", "jupyterlab", "fastapi", "sqlalchemy")


def test_chaincode_project_installs_alone_and_serves(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(ROOT / "chaincode")],
                             capture_output=True, text=True, timeout=600, check=False)
    assert install.returncode == 0, install.stderr[-2000:]
    # Run from a directory outside the repo so only the installed packages are importable.
    probe = ("import importlib.util, json, gxchaincode, gxshim; "
             f"print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {HEAVY!r}}}))")
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert found.stdout.strip() == "{" + ", ".join(f'"{m}": false' for m in HEAVY) + "}"
    help_text = subprocess.run([str(env_dir / "bin" / "gx-chaincode"), "--help"], capture_output=True, text=True,
                               cwd=tmp_path, check=False)
    assert help_text.returncode == 0 and "CHAINCODE_ID" in help_text.stdout
    assert sys.version_info[:2] == (3, 11)
