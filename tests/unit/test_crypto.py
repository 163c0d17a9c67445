"""Crypto material: what Fabric's MSP needs, and the identities the chaincode issue relies on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gxlib.config import DevnetSettings
from gxlib.devnet.crypto import certificate_attributes, crypto_is_complete, generate_crypto
from gxlib.devnet.layout import DevnetLayout, Identity


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> DevnetLayout:
    layout = DevnetLayout(DevnetSettings(state_dir=tmp_path_factory.mktemp("crypto")))
    assert generate_crypto(layout) is True
    return layout


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ou(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value  # type: ignore[return-value]


def test_every_identity_has_an_msp_and_a_tls_pair(layout: DevnetLayout) -> None:
    idents: list[Identity] = [i for org in layout.orgs for i in layout.users(org)]
    idents += [n.identity for n in layout.nodes]
    assert len(idents) == 1 + 4 + 2 + 3  # orderer-org admin; org1 admin/client/super/service; org2 admin/client; nodes
    for ident in idents:
        assert ident.cert_file.exists() and ident.key_file.exists(), ident.name
        assert ident.tls_cert_file.exists() and ident.tls_key_file.exists(), ident.name
        assert stat.S_IMODE(ident.key_file.stat().st_mode) == 0o600


def test_certificates_chain_to_their_org_ca_with_the_node_ou(layout: DevnetLayout) -> None:
    for org in layout.orgs:
        ca = _cert(org.ca_cert_file)
        for ident in [*layout.users(org), *(n.identity for n in layout.nodes if n.org.key == org.key)]:
            cert = _cert(ident.cert_file)
            cert.verify_directly_issued_by(ca)
            assert _ou(cert) == ident.role.value
            assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
            assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]


def test_msp_config_enables_node_ous(layout: DevnetLayout) -> None:
    config = yaml.safe_load((layout.peer_orgs[0].msp_dir / "config.yaml").read_text())
    node_ous = config["NodeOUs"]
    assert node_ous["Enable"] is True
    assert {node_ous[k]["OrganizationalUnitIdentifier"] for k in node_ous if k != "Enable"} == {
        "client", "peer", "admin", "orderer"}
    assert (layout.peer_orgs[0].msp_dir / node_ous["AdminOUIdentifier"]["Certificate"]).exists()


def test_super_admin_carries_the_fabric_ca_attribute_and_service_identity_does_not(layout: DevnetLayout) -> None:
    super_admin = _cert(layout.super_admin.cert_file)
    assert certificate_attributes(super_admin) == {"gx_super_admin": "true"}
    assert _ou(super_admin) == "client"
    assert certificate_attributes(_cert(layout.service_identity.cert_file)) == {}
    assert certificate_attributes(_cert(layout.admin("org1").cert_file)) == {}


def test_node_tls_certificates_name_loopback(layout: DevnetLayout) -> None:
    for node in layout.nodes:
        tls = _cert(node.identity.tls_cert_file)
        sans = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "127.0.0.1" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
        assert node.identity.name in sans.get_values_for_type(x509.DNSName)
        tls.verify_directly_issued_by(_cert(node.org.tls_ca_cert_file))


def test_second_generation_changes_nothing(layout: DevnetLayout) -> None:
    before = layout.super_admin.cert_file.read_bytes()
    assert crypto_is_complete(layout)
    assert generate_crypto(layout) is False
    assert layout.super_admin.cert_file.read_bytes() == before


def test_half_written_crypto_is_regenerated_whole(tmp_path: Path) -> None:
    layout = DevnetLayout(DevnetSettings(state_dir=tmp_path))
    generate_crypto(layout)
    layout.service_identity.key_file.unlink()
    assert not crypto_is_complete(layout)
    assert generate_crypto(layout) is True
    assert crypto_is_complete(layout)
    # The regenerated tree is consistent: every cert chains to the (new) org CA.
    _cert(layout.service_identity.cert_file).verify_directly_issued_by(_cert(layout.org("org1").ca_cert_file))
