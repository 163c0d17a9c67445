"""The Gateway client against the real devnet, with no chaincode of ours: qscc, status by ID, transport errors."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from fabric_protos.common import ledger_pb2

from gxlib.devnet.network import Devnet
from gxlib.fabric.errors import DeadlineExceededError, EvaluateError, UnavailableError
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.sync import SyncGateway

pytestmark = pytest.mark.integration


def _cli_height(devnet: Devnet, org: str) -> int:
    out = devnet.peer_cli(org).run("channel", "getinfo", "-c", devnet.layout.settings.channel)
    return int(json.loads(re.search(r"Blockchain info: (\{.*\})", out).group(1))["height"])


def test_qscc_chain_info_through_the_gateway_agrees_with_peer_channel_getinfo(devnet: Devnet,
                                                                              client_env: dict[str, Any]) -> None:
    async def heights() -> dict[str, int]:
        found = {}
        for org in ("org1", "org2"):
            async with Gateway.from_environment(client_env, f"admin:{org}") as gateway:
                contract = gateway.network(client_env["channel"]).contract("qscc")
                info = ledger_pb2.BlockchainInfo()
                info.ParseFromString(await contract.evaluate("GetChainInfo", client_env["channel"]))
                found[org] = info.height
        return found

    got = asyncio.run(heights())
    assert got == {"org1": _cli_height(devnet, "org1"), "org2": _cli_height(devnet, "org2")}
    assert got["org1"] >= 1


def test_the_sync_facade_answers_the_same_height(devnet: Devnet, client_env: dict[str, Any]) -> None:
    with SyncGateway.from_environment(client_env, "service") as gateway:
        assert gateway.network(client_env["channel"]).block_height() == _cli_height(devnet, "org1")


def test_status_by_id_of_an_unknown_transaction_is_none_and_waiting_for_it_times_out(
        client_env: dict[str, Any]) -> None:
    unknown = "0" * 64

    async def check() -> None:
        async with Gateway.from_environment(client_env, "service") as gateway:
            network = gateway.network(client_env["channel"])
            assert await network.transaction_status(unknown) is None
            with pytest.raises(DeadlineExceededError) as caught:
                await network.commit_status(unknown, timeout=1)
            assert caught.value.tx_id == unknown

    asyncio.run(check())


def test_a_chaincode_error_from_a_system_chaincode_is_an_evaluate_error_with_its_message(
        client_env: dict[str, Any]) -> None:
    async def check() -> None:
        async with Gateway.from_environment(client_env, "service") as gateway:
            contract = gateway.network(client_env["channel"]).contract("qscc")
            with pytest.raises(EvaluateError) as caught:
                await contract.evaluate("GetBlockByNumber", client_env["channel"], "999999")
            assert caught.value.chaincode_status == 500
            assert "no such block number [999999]" in caught.value.chaincode_message
            assert caught.value.details and caught.value.details[0].msp_id == "Org1MSP"

    asyncio.run(check())


def test_an_unreachable_gateway_is_an_unavailable_transport_error(client_env: dict[str, Any]) -> None:
    async def check() -> None:
        gateway = Gateway.from_environment(client_env, "service")
        gateway.endpoint = replace(gateway.endpoint, address="127.0.0.1:1")
        try:
            with pytest.raises(UnavailableError) as caught:
                await gateway.network(client_env["channel"]).block_height()
            assert "127.0.0.1:1" in str(caught.value)
        finally:
            await gateway.close()

    asyncio.run(check())
