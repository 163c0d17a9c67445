"""`gx runbook kernel` installs the project's kernel spec into the virtualenv, pointing at its python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gxlib.runbook.kernel import kernel_python
from gxlib.runbook.settings import KERNEL_NAME


def test_kernel_spec_lives_in_the_virtualenv_and_runs_its_python() -> None:
    result = subprocess.run([sys.executable, "-m", "gxlib.cli", "runbook", "kernel"], capture_output=True,
                            text=True, check=False, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    spec_dir = Path(result.stdout.strip())
    assert spec_dir == Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    argv = json.loads((spec_dir / "kernel.json").read_text())["argv"]
    assert argv[0] == sys.executable and kernel_python(KERNEL_NAME) == sys.executable
