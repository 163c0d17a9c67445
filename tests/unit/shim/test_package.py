"""CCaaS packages (gxlib.fabric.lifecycle.package): layout, determinism, IDs and validation.

The package ID is also checked against Fabric's own `peer lifecycle chaincode calculatepackageid` in
tests/integration/shim/test_package_cli.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from gxlib.fabric.lifecycle.package import (
    ConnectionInfo,
    PackageError,
    build_ccaas_package,
    package_id,
    read_package,
)


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_package_holds_metadata_and_code_with_connection_json() -> None:
    package = build_ccaas_package("gxtv3_1.1", {"address": "chaincode-org1:9999", "dial_timeout": "10s"})
    outer = members(package)
    assert list(outer) == ["metadata.json", "code.tar.gz"]
    assert json.loads(outer["metadata.json"]) == {"type": "ccaas", "label": "gxtv3_1.1"}
    connection = json.loads(members(outer["code.tar.gz"])["connection.json"])
    assert connection == {"address": "chaincode-org1:9999", "dial_timeout": "10s", "tls_required": False,
                          "client_auth_required": False, "client_key": "", "client_cert": "", "root_cert": ""}


def test_same_inputs_give_the_same_bytes_and_package_id() -> None:
    conn = ConnectionInfo(address="127.0.0.1:7052")
    first, second = build_ccaas_package("cc_1", conn), build_ccaas_package("cc_1", conn)
    assert first == second
    assert package_id("cc_1", first) == "cc_1:" + hashlib.sha256(first).hexdigest()
    assert gzip.decompress(first)  # a plain gzip stream, as the peer reads it
    assert package_id("cc_1", build_ccaas_package("cc_1", ConnectionInfo(address="127.0.0.1:7053"))) != \
        package_id("cc_1", first)


def test_read_package_gives_back_label_and_connection() -> None:
    conn = ConnectionInfo(address="h:1", tls_required=True, root_cert="-----BEGIN CERTIFICATE-----\n...")
    contents = read_package(build_ccaas_package("cc_2.0", conn))
    assert contents.is_ccaas and contents.label == "cc_2.0" and contents.connection == conn


@pytest.mark.parametrize("label", ["", "_leading", "has space", "colon:no", "slash/no"])
def test_labels_the_peer_refuses_are_refused(label: str) -> None:
    with pytest.raises(PackageError, match="label"):
        build_ccaas_package(label, {"address": "h:1"})


@pytest.mark.parametrize(("connection", "problem"), [
    ({"address": "no-port"}, "host:port"),
    ({"address": "h:1", "dial_timeout": "ten"}, "Go duration"),
    ({"address": "h:1", "tls_required": True}, "root_cert"),
    ({"address": "h:1", "client_auth_required": True, "root_cert": "x"}, "client_cert"),
    ({"address": "h:1", "bogus": 1}, "unknown connection.json field"),
    ({}, "needs an address"),
])
def test_bad_connections_are_refused_with_the_reason(connection: dict[str, object], problem: str) -> None:
    with pytest.raises(PackageError, match=problem):
        build_ccaas_package("cc", connection)


def test_reading_garbage_is_a_package_error() -> None:
    with pytest.raises(PackageError, match="not a gzipped tar"):
        read_package(b"garbage")


def test_connection_json_is_stored_owner_only_because_it_holds_the_peers_client_key() -> None:
    package = build_ccaas_package("gxtv3_1.0", ConnectionInfo(
        address="cc.example:9999", tls_required=True, client_auth_required=True, root_cert="CA",
        client_cert="CERT", client_key="-----BEGIN PRIVATE KEY-----"))
    with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as outer:
        code = outer.extractfile(outer.getmember("code.tar.gz")).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(code), mode="r:gz") as inner:
        assert inner.getmember("connection.json").mode == 0o600
