"""``gx k8s`` (gxlib/platform/cli.py), the parts that need no cluster."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from gxlib.platform.cli import k8s


def test_render_prints_the_overlay_of_the_environment() -> None:
    result = CliRunner().invoke(k8s, ["render", "testnet"])
    assert result.exit_code == 0, result.output
    objects = [doc for doc in yaml.safe_load_all(result.output) if doc]
    names = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objects}
    assert ("Service", "outbox-submitter-metrics", "backend-testnet") in names
    assert ("Deployment", "gxtv3-org2-testnet", "fabric") in names


def test_render_refuses_the_local_profile() -> None:
    result = CliRunner().invoke(k8s, ["render", "local"])
    assert result.exit_code == 2 and "local" in result.output


def test_roll_chaincode_wants_org_equals_package_id() -> None:
    result = CliRunner().invoke(k8s, ["roll-chaincode", "devnet", "gxtv3_1.1:abc"])
    assert result.exit_code == 2 and "ORG=PACKAGE_ID" in result.output
