"""Chaincode lifecycle over gRPC (no `peer` CLI), checked against Fabric's own `peer lifecycle` queries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gxlib.devnet.network import Devnet
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.lifecycle.client import Lifecycle
from gxlib.fabric.lifecycle.definition import ChaincodeDefinition, CommittedChaincode
from gxlib.fabric.lifecycle.package import ConnectionInfo, build_ccaas_package, package_id

pytestmark = pytest.mark.integration

NAME = "lcgrpc"


def test_install_approve_commit_over_grpc_and_peer_cli_querycommitted_agrees(devnet: Devnet,
                                                                           client_env: dict[str, Any]) -> None:
    channel = client_env["channel"]
    # Nothing needs to serve this address: installing, approving and committing never dial the chaincode.
    package = build_ccaas_package(f"{NAME}_1.0", ConnectionInfo("127.0.0.1:1"))
    expected_id = package_id(f"{NAME}_1.0", package)

    async def deploy() -> tuple[dict[str, str], dict[str, bool], CommittedChaincode | None, CommittedChaincode | None]:
        gateways = {org: Gateway.from_environment(client_env, f"admin:{org}") for org in ("org1", "org2")}
        lifecycles = {org: Lifecycle(gw, channel) for org, gw in gateways.items()}
        try:
            before = await lifecycles["org1"].query_committed(NAME)
            definition = ChaincodeDefinition(NAME, "1.0", 1)
            installed = {}
            for org, lifecycle in lifecycles.items():
                installed[org] = await lifecycle.install(package)
                assert await lifecycle.install(package) == installed[org]  # installing twice is harmless
                assert expected_id in [c.package_id for c in await lifecycle.query_installed()]
            approved_by_org1_only = None
            for org, lifecycle in lifecycles.items():
                status = await lifecycle.approve(definition, installed[org])
                assert status.successful
                if approved_by_org1_only is None:
                    approved_by_org1_only = await lifecycle.check_commit_readiness(definition)
            assert approved_by_org1_only == {"Org1MSP": True, "Org2MSP": False}
            readiness = await lifecycles["org2"].check_commit_readiness(definition)
            assert (await lifecycles["org1"].commit(definition)).successful
            return installed, readiness, before, await lifecycles["org2"].query_committed(NAME)
        finally:
            for org in gateways:
                await lifecycles[org].close()
                await gateways[org].close()

    installed, readiness, before, committed = asyncio.run(deploy())
    assert before is None
    assert installed == {"org1": expected_id, "org2": expected_id}
    assert readiness == {"Org1MSP": True, "Org2MSP": True}
    assert committed is not None
    assert (committed.version, committed.sequence, committed.endorsement_plugin, committed.validation_plugin) == (
        "1.0", 1, "escc", "vscc")
    assert committed.approvals == {"Org1MSP": True, "Org2MSP": True}

    for org in ("org1", "org2"):
        cli = devnet.peer_cli(org)
        out = cli.run("lifecycle", "chaincode", "querycommitted", "--channelID", channel, "--name", NAME,
                      "--output", "json")
        seen = json.loads(out[out.index("{"):])
        assert (seen["version"], seen["sequence"], seen["approvals"]) == ("1.0", 1, committed.approvals)
        installed_out = cli.run("lifecycle", "chaincode", "queryinstalled", "--output", "json")
        assert expected_id in [c["package_id"] for c in json.loads(installed_out)["installed_chaincodes"]]
