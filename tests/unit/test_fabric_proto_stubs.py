"""typings/fabric_protos (what mypy knows of the Fabric protobuf messages) matches the installed package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_fabric_proto_stubs_match_the_installed_fabric_protos() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "fabric_proto_stubs.py"), "--check"],
                            capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
