"""The local chaincode servers' TLS material (SPEC §10) and the packages that carry the peer's side of it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gxlib.chaincode.lifecycle import connection_info
from gxlib.chaincode.servers import chaincode_servers
from gxlib.config import ChaincodeSettings, DevnetSettings
from gxlib.devnet import crypto
from gxlib.devnet.crypto import generate_crypto
from gxlib.devnet.layout import DevnetLayout
from gxlib.fabric.lifecycle.package import build_ccaas_package, read_package


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> DevnetLayout:
    layout = DevnetLayout(DevnetSettings(state_dir=tmp_path_factory.mktemp("cc-tls")))
    generate_crypto(layout)
    return layout


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_every_orgs_server_gets_a_pair_from_its_tls_ca_naming_its_address(layout: DevnetLayout) -> None:
    for server in chaincode_servers(layout, ChaincodeSettings()):
        assert server.tls is not None
        assert server.tls.ensure() is True
        org_ca = _cert(layout.org(server.org_key).tls_ca_cert_file)
        for cert_file in (server.tls.server_cert, server.tls.client_cert):
            cert = _cert(cert_file)
            assert cert.issuer == org_ca.subject
            cert.verify_directly_issued_by(org_ca)
        sans = _cert(server.tls.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert server.host in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] + \
            sans.get_values_for_type(x509.DNSName)
        assert server.tls.ca_cert.read_bytes() == org_ca.public_bytes(crypto.serialization.Encoding.PEM)


def test_the_material_is_stable_so_the_package_id_is(layout: DevnetLayout) -> None:
    server = chaincode_servers(layout, ChaincodeSettings())[0]
    assert server.tls is not None
    server.tls.ensure()
    first = build_ccaas_package("gxtv3_1.0", connection_info(server.address, "10s", server.tls))
    assert server.tls.ensure() is False
    assert build_ccaas_package("gxtv3_1.0", connection_info(server.address, "10s", server.tls)) == first


def test_the_package_tells_the_peer_to_use_tls_with_its_client_pair(layout: DevnetLayout) -> None:
    server = chaincode_servers(layout, ChaincodeSettings())[1]
    assert server.tls is not None
    connection = read_package(build_ccaas_package("gxtv3_1.0", connection_info(server.address, "10s",
                                                                               server.tls))).connection
    assert connection is not None
    assert connection.tls_required and connection.client_auth_required
    assert connection.root_cert == server.tls.ca_cert.read_text()
    assert connection.client_cert == server.tls.client_cert.read_text()
    assert connection.client_key == server.tls.client_key.read_text()
    plain = read_package(build_ccaas_package("gxtv3_1.0", connection_info(server.address, "10s", None))).connection
    assert plain is not None and not plain.tls_required


def test_private_keys_are_owner_only_from_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[int] = []  # the mode of every file created on the way (the temporary file included)
    real_open = os.open

    def spying_open(path: str, flags: int, mode: int = 0o777, *args: object, **kwargs: object) -> int:
        if flags & os.O_CREAT:
            created.append(mode)
        return real_open(path, flags, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spying_open)
    old_umask = os.umask(0)
    try:
        target = tmp_path / "keys" / "server.key"
        target.parent.mkdir()
        target.write_bytes(b"old")
        target.chmod(0o644)
        crypto._write_private(target, crypto._key_pem(ec.generate_private_key(ec.SECP256R1())))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert created and set(created) == {0o600}


def test_without_the_orgs_tls_ca_the_error_names_the_directory(tmp_path: Path) -> None:
    layout = DevnetLayout(DevnetSettings(state_dir=tmp_path))
    server = chaincode_servers(layout, ChaincodeSettings())[0]
    assert server.tls is not None
    with pytest.raises(crypto.CryptoMaterialError, match=str(layout.org(server.org_key).tlsca_dir)) as caught:
        server.tls.ensure()
    assert caught.value.hint is not None and "gx devnet up" in caught.value.hint
