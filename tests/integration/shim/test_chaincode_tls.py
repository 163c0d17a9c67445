"""The real peer dials our chaincode server over TLS and mutual TLS (connection.json root_cert / client pair)."""

from __future__ import annotations

import pytest

from gxlib.devnet.network import Devnet
from tests.integration.conftest import deploy_chaincode

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("name", "client_auth"), [("testcctls", False), ("testccmtls", True)])
def test_peer_reaches_a_tls_chaincode_server(devnet: Devnet, name: str, client_auth: bool) -> None:
    deployed = deploy_chaincode(devnet, name=name, tls=True, client_auth=client_auth)
    try:
        for org in ("org1", "org2"):
            out = devnet.peer_cli(org).run("chaincode", "query", "-C", deployed.channel, "-n", deployed.name,
                                           "-c", '{"Args":["TestContract:Add","5","6"]}')
            assert out.strip() == "11"
    finally:
        deployed.stop()
