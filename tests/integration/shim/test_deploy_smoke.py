"""The test chaincode deploys on the devnet and answers Fabric's own `peer chaincode query`."""

from __future__ import annotations

import pytest

from gxlib.devnet.network import Devnet
from tests.integration.conftest import DeployedChaincode

pytestmark = pytest.mark.integration


def test_test_chaincode_answers_peer_cli_query_on_every_peer(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    for org in devnet.layout.peer_orgs:
        out = devnet.peer_cli(org.key).run("chaincode", "query", "-C", test_chaincode.channel, "-n",
                                           test_chaincode.name, "-c", '{"Args":["TestContract:Add","40","2"]}')
        assert out.strip() == "42"
