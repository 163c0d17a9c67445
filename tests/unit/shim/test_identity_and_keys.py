"""Creator parsing (OUs, Fabric CA attributes) and composite keys."""

from __future__ import annotations

import pytest
from fabric_protos.msp import identities_pb2

from gxshim import ClientIdentity, InvalidKeyError
from gxshim.identity import IdentityError
from gxshim.keys import create_composite_key, partial_composite_range, split_composite_key
from tests.unit.shim.conftest import make_cert


def serialized(msp: str, pem: bytes) -> bytes:
    return identities_pb2.SerializedIdentity(mspid=msp, id_bytes=pem).SerializeToString()


def test_creator_with_fabric_ca_attributes() -> None:
    ident = ClientIdentity.from_serialized(serialized("Org1MSP", make_cert(attrs={"gx_super_admin": "true"})))
    assert ident.msp_id == "Org1MSP"
    assert ident.common_name == "SuperAdmin"
    assert ident.ous == ["client", "org1"]
    assert ident.attributes == {"gx_super_admin": "true"}
    assert ident.has_attribute_value("gx_super_admin", "true")
    assert ident.id.startswith("x509::") and "CN=SuperAdmin" in ident.id


def test_creator_without_attributes_has_none() -> None:
    ident = ClientIdentity.from_serialized(serialized("Org2MSP", make_cert("Admin", ("admin",))))
    assert ident.attributes == {} and ident.attribute("gx_super_admin") is None
    assert ident.ous == ["admin"]


def test_creator_that_is_not_a_certificate_is_an_identity_error() -> None:
    with pytest.raises(IdentityError):
        ClientIdentity.from_serialized(serialized("Org1MSP", b"not a cert"))


def test_composite_keys_round_trip_and_range() -> None:
    key = create_composite_key("owner", ["alice", "a1"])
    assert key == "\x00owner\x00alice\x00a1\x00"
    assert split_composite_key(key) == ("owner", ["alice", "a1"])
    start, end = partial_composite_range("owner", ["alice"])
    assert start == "\x00owner\x00alice\x00" and end == start + "\U0010ffff"
    assert start <= key < end


def test_composite_key_parts_must_not_hold_reserved_runes() -> None:
    with pytest.raises(InvalidKeyError):
        create_composite_key("owner", ["al\x00ice"])
    with pytest.raises(InvalidKeyError):
        split_composite_key("plain-key")
