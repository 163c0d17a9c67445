"""TLS on the chaincode endpoint, and the settings `python -m gxshim` reads from the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from gxshim import ChaincodeServer, TLSConfig
from gxshim.serve import ServeConfigError, build_server, load_contract
from tests.unit.shim.conftest import make_tls
from tests.unit.shim.fakepeer import FakePeer

Serve = Callable[..., ChaincodeServer]
Peers = Callable[..., FakePeer]


def test_tls_server_serves_a_peer_that_trusts_its_ca(serve: Serve, peers: Peers) -> None:
    tls = make_tls()
    server = serve(tls=TLSConfig(tls.server_cert_pem, tls.server_key_pem))
    peer = peers(server, credentials=grpc.ssl_channel_credentials(root_certificates=tls.ca_pem))
    assert peer.invoke("TestContract:Add", "2", "2").response.payload == b"4"


def test_mutual_tls_requires_the_peer_client_certificate(serve: Serve, peers: Peers) -> None:
    tls = make_tls()
    server = serve(tls=TLSConfig(tls.server_cert_pem, tls.server_key_pem, client_ca_pem=tls.ca_pem))
    with_cert = grpc.ssl_channel_credentials(tls.ca_pem, tls.client_key_pem, tls.client_cert_pem)
    assert peers(server, credentials=with_cert).invoke("TestContract:Add", "1", "1").response.payload == b"2"
    without = FakePeer(f"127.0.0.1:{server.port}", credentials=grpc.ssl_channel_credentials(tls.ca_pem))
    try:
        assert not without.ready.wait(2)
        assert without.ended.wait(5)
    finally:
        without.close()


def test_missing_environment_is_named() -> None:
    with pytest.raises(ServeConfigError, match="CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS must be set"):
        build_server(["tests.integration.testcc:TestContract"], env={})


def test_contract_spec_must_be_module_colon_contract_class() -> None:
    with pytest.raises(ServeConfigError, match="module:Class"):
        load_contract("tests.integration.testcc")
    with pytest.raises(ServeConfigError, match="cannot import"):
        load_contract("no.such.module:X")
    with pytest.raises(ServeConfigError, match="not a Contract subclass"):
        load_contract("tests.integration.testcc:EVENT_NAME")


def test_tls_settings_come_from_the_environment(tmp_path: Path) -> None:
    tls = make_tls()
    (tmp_path / "c.pem").write_bytes(tls.server_cert_pem)
    (tmp_path / "k.pem").write_bytes(tls.server_key_pem)
    env = {"CHAINCODE_ID": "cc_1:" + "0" * 64, "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0",
           "CHAINCODE_TLS_CERT": str(tmp_path / "c.pem"), "CHAINCODE_TLS_KEY": str(tmp_path / "k.pem")}
    server = build_server(["tests.integration.testcc:TestContract"], env=env)
    assert server.tls == TLSConfig(tls.server_cert_pem, tls.server_key_pem)
    with pytest.raises(ServeConfigError, match="set together"):
        build_server(["tests.integration.testcc:TestContract"], env={**env, "CHAINCODE_TLS_KEY": ""})
