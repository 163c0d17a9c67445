"""What an operator sees from `gx`: help that explains, errors that say what to do, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def gx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gxlib.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, timeout=120)


def test_help_lists_the_command_groups() -> None:
    result = gx("--help")
    assert result.returncode == 0
    for group in ("backend", "bench", "chaincode", "demo", "devnet", "fabric", "k8s", "monitoring", "projector",
                  "runbook", "serve"):
        assert f"\n  {group} " in result.stdout, group


# Runs gx's command line in this interpreter, then prints which of the slow-to-import modules it imported.
_IMPORTED_BY = """
import sys
sys.argv = ["gx", *sys.argv[1:]]
import gxlib.cli
gxlib.cli.main()
import jsonschema  # what a service that validates events imports
print(sorted(m for m in ("gxlib.runbook", "gxlib.platform", "gxlib.monitoring", "kubernetes", "pandas",
                         "rfc3987_syntax") if sys.modules.get(m) is not None))
"""


def test_a_service_command_imports_neither_the_runbooks_nor_kubernetes_nor_the_iri_grammar() -> None:
    # `gx serve api|submitter|projector` is how every service starts (and restarts after a crash): importing all of
    # gx, and jsonschema's lark-compiled IRI grammar, made that 8-10 s here instead of well under one.
    result = subprocess.run([sys.executable, "-c", _IMPORTED_BY, "serve", "api", "--help"], capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Usage: gx serve api" in result.stdout
    assert result.stdout.splitlines()[-1] == "[]"


def test_k8s_help_lists_the_images_deploy_and_down_commands_from_their_own_modules() -> None:
    result = gx("k8s", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("images", "deploy", "down", "up"):
        assert f"\n  {command} " in result.stdout, command


def test_devnet_help_explains_settings_and_commands() -> None:
    result = gx("devnet", "--help")
    assert result.returncode == 0
    for word in ("up", "status", "down", "logs", "env", "GX_DEVNET_PORT_OFFSET", "GX_DEVNET_CHANNEL"):
        assert word in result.stdout


def test_status_of_a_network_that_was_never_created_is_unhealthy(tmp_path: Path) -> None:
    result = gx("devnet", "status", "--json", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    status = json.loads(result.stdout)
    assert status["created"] is False
    assert [n["name"] for n in status["nodes"]] == ["orderer0", "peer0-org1", "peer0-org2"]
    assert all(n["healthy"] is False and n["detail"] == "not running" for n in status["nodes"])


def test_logs_of_an_unknown_node_names_the_known_ones(tmp_path: Path) -> None:
    result = gx("devnet", "logs", "peer9", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no node 'peer9'" in result.stderr and "peer0-org1" in result.stderr


def test_peer_cli_env_for_an_unknown_org_is_an_error(tmp_path: Path) -> None:
    result = gx("devnet", "env", "--peer-cli", "org7", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "org7" in result.stderr and "org1" in result.stderr


def test_invalid_setting_is_refused_with_its_name(tmp_path: Path) -> None:
    result = gx("devnet", "status", "--state-dir", str(tmp_path), env={"GX_DEVNET_CHANNEL": "Bad_Name"})
    assert result.returncode == 2
    assert "channel" in result.stderr and "not valid for Fabric" in result.stderr


def test_missing_go_stops_the_build_with_what_to_install(tmp_path: Path) -> None:
    result = gx("fabric", "build", env={"GX_FABRIC_GO_BINARY": "/nonexistent/go",
                                        "GX_FABRIC_CACHE_ROOT": str(tmp_path)})
    assert result.returncode == 1
    assert "Go was not found" in result.stderr and "install Go" in result.stderr
