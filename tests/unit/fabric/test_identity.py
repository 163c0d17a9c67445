from __future__ import annotations

import json

import pytest
from fabric_protos.msp import identities_pb2

from gxlib.fabric.identity import Identity, IdentityError, identity_from_environment

from .builders import key_pem, new_key, self_signed_cert


def test_serialized_identity_is_the_msp_id_and_the_certificate_pem() -> None:
    cert = self_signed_cert(new_key(), "Admin@org1.example.com")
    parsed = identities_pb2.SerializedIdentity()
    parsed.ParseFromString(Identity("Org1MSP", cert).serialize())
    assert (parsed.mspid, parsed.id_bytes) == ("Org1MSP", cert)
    assert Identity("Org1MSP", cert).common_name == "Admin@org1.example.com"


@pytest.fixture()
def environment(tmp_path):
    identities = []
    for name, org, msp in [("Admin@org1.gx.local", "org1", "Org1MSP"), ("GxService@org1.gx.local", "org1", "Org1MSP"),
                           ("Admin@org2.gx.local", "org2", "Org2MSP")]:
        key = new_key()
        (tmp_path / f"{name}.key").write_bytes(key_pem(key))
        (tmp_path / f"{name}.pem").write_bytes(self_signed_cert(key, name))
        identities.append({"name": name, "org": org, "msp_id": msp, "cert_file": str(tmp_path / f"{name}.pem"),
                           "key_file": str(tmp_path / f"{name}.key")})
    env = {"identities": identities, "roles": {"service": "GxService@org1.gx.local", "super_admin": "x",
                                               "org_admins": {"org1": "Admin@org1.gx.local",
                                                              "org2": "Admin@org2.gx.local"}}}
    path = tmp_path / "env.json"
    path.write_text(json.dumps(env))
    return path


def test_identities_load_from_the_devnet_environment_by_name_or_role(environment) -> None:
    service = identity_from_environment(environment, "service")
    assert (service.name, service.identity.msp_id) == ("GxService@org1.gx.local", "Org1MSP")
    admin2 = identity_from_environment(json.loads(environment.read_text()), "admin:org2")
    assert admin2.identity.msp_id == "Org2MSP"
    assert admin2.identity.common_name == "Admin@org2.gx.local"


def test_an_unknown_identity_is_refused_with_the_known_names(environment) -> None:
    with pytest.raises(IdentityError, match=r"Admin@org1\.gx\.local"):
        identity_from_environment(environment, "Nobody@org1.gx.local")
