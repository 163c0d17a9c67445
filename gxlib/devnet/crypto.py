"""Crypto material for the devnet, generated with the ``cryptography`` package.

Per org: a signing CA and a TLS CA (ECDSA P-256), an org MSP with NodeOUs, and for every node and user an
MSP (signing cert + key) and a TLS key pair. Certificates follow what Fabric's MSP expects: CA certs with
basic constraints and a SHA-256 subject key identifier, leaf certs with the NodeOU in the subject's OU.
Identities with attributes carry them the way Fabric CA does: extension 1.2.3.4.5.6.7.8.1 holding
``{"attrs": {...}}`` (SPEC §2.1).

Generation is all-or-nothing: the tree is written beside the target and renamed into place, so a crash
never leaves half an MSP behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gxlib.devnet.layout import DevnetLayout, Identity, Node, Org
from gxlib.errors import GxError
from gxlib.files import write_private

# Fabric CA writes enrollment attributes into this X.509 extension as JSON.
FABRIC_CA_ATTRIBUTE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
VALIDITY = dt.timedelta(days=3650)
# Tolerate clocks that are a little behind.
BACKDATE = dt.timedelta(hours=1)

CA_CERT_NAME = "ca.pem"
TLSCA_CERT_NAME = "tlsca.pem"


def _subject_key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    # Fabric identifies EC keys by the SHA-256 of the uncompressed point; using the same value for the
    # certificate's SKI keeps the two in agreement.
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return hashlib.sha256(point).digest()


def _name(org: Org, common_name: str, ou: str | None = None) -> x509.Name:
    parts = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org.domain),
    ]
    if ou:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(parts)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class CertificateAuthority:
    """A self-signed ECDSA P-256 CA that issues Fabric-style leaf certificates."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls, org: Org, common_name: str) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(org, common_name)
        now = dt.datetime.now(dt.UTC)
        ski = _subject_key_id(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                                  ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(
        self,
        org: Org,
        common_name: str,
        *,
        ou: str | None = None,
        tls_sans: list[str] | None = None,
        attributes: dict[str, str] | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A new key and a certificate for it. ``tls_sans`` makes it a TLS (server + client) certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(org, common_name, ou)).issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier(_subject_key_id(key.public_key())), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier(ca_ski, None, None), critical=False)
        )
        if tls_sans is not None:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                              data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                              encipher_only=False, decipher_only=False), critical=True,
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            ).add_extension(x509.SubjectAlternativeName(_general_names(tls_sans)), critical=False)
        else:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                              encipher_only=False, decipher_only=False), critical=True,
            )
        if attributes:
            payload = json.dumps({"attrs": attributes}, separators=(",", ":")).encode()
            builder = builder.add_extension(x509.UnrecognizedExtension(FABRIC_CA_ATTRIBUTE_OID, payload),
                                            critical=False)
        return key, builder.sign(self.key, hashes.SHA256())

    def save(self, directory: Path, cert_name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / cert_name).write_bytes(_cert_pem(self.cert))
        _write_private(directory / "priv_sk", _key_pem(self.key))


def _general_names(sans: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for san in dict.fromkeys(sans):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    return names


def _write_private(path: Path, data: bytes) -> None:
    write_private(path, data)


def node_ous_config() -> dict[str, object]:
    """The MSP ``config.yaml`` that turns on NodeOUs (client, peer, admin, orderer)."""
    def ou(name: str) -> dict[str, str]:
        return {"Certificate": f"cacerts/{CA_CERT_NAME}", "OrganizationalUnitIdentifier": name}

    return {"NodeOUs": {"Enable": True, "ClientOUIdentifier": ou("client"), "PeerOUIdentifier": ou("peer"),
                        "AdminOUIdentifier": ou("admin"), "OrdererOUIdentifier": ou("orderer")}}


def _write_msp_base(msp_dir: Path, ca: CertificateAuthority, tlsca: CertificateAuthority) -> None:
    (msp_dir / "cacerts").mkdir(parents=True, exist_ok=True)
    (msp_dir / "tlscacerts").mkdir(parents=True, exist_ok=True)
    (msp_dir / "cacerts" / CA_CERT_NAME).write_bytes(_cert_pem(ca.cert))
    (msp_dir / "tlscacerts" / TLSCA_CERT_NAME).write_bytes(_cert_pem(tlsca.cert))
    (msp_dir / "config.yaml").write_text(yaml.safe_dump(node_ous_config(), sort_keys=False))


def _enroll(ident: Identity, home: Path, ca: CertificateAuthority, tlsca: CertificateAuthority,
            tls_sans: list[str]) -> None:
    """Write the MSP and TLS directories of one identity under ``home`` (a staging copy of ident.home)."""
    msp = home / "msp"
    _write_msp_base(msp, ca, tlsca)
    key, cert = ca.issue(ident.org, ident.name, ou=ident.role.value, attributes=ident.attributes or None)
    (msp / "signcerts").mkdir(parents=True, exist_ok=True)
    (msp / "signcerts" / "cert.pem").write_bytes(_cert_pem(cert))
    _write_private(msp / "keystore" / "priv_sk", _key_pem(key))
    tls_key, tls_cert = tlsca.issue(ident.org, ident.name, ou=ident.role.value, tls_sans=tls_sans)
    tls = home / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    (tls / "ca.crt").write_bytes(_cert_pem(tlsca.cert))
    (tls / ident.tls_cert_file.name).write_bytes(_cert_pem(tls_cert))
    _write_private(tls / ident.tls_key_file.name, _key_pem(tls_key))


def node_tls_sans(node: Node) -> list[str]:
    """Every name a client may use to reach the node: its host setting, loopback names, its node names."""
    return [node.host, "127.0.0.1", "localhost", node.name, node.identity.name]


def crypto_is_complete(layout: DevnetLayout) -> bool:
    return all(
        ident.cert_file.exists() and ident.key_file.exists() and ident.tls_cert_file.exists()
        for org in layout.orgs for ident in layout.users(org)
    ) and all(n.identity.cert_file.exists() and n.identity.tls_key_file.exists() for n in layout.nodes)


def generate_crypto(layout: DevnetLayout) -> bool:
    """Create every org's CAs, MSPs and TLS pairs. Returns False (and changes nothing) if complete."""
    if crypto_is_complete(layout):
        return False
    staging = layout.crypto_dir.with_name(layout.crypto_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)

    def staged(path: Path) -> Path:
        return staging / path.relative_to(layout.crypto_dir)

    for org in layout.orgs:
        ca = CertificateAuthority.create(org, f"ca.{org.domain}")
        tlsca = CertificateAuthority.create(org, f"tlsca.{org.domain}")
        ca.save(staged(org.ca_dir), CA_CERT_NAME)
        tlsca.save(staged(org.tlsca_dir), TLSCA_CERT_NAME)
        _write_msp_base(staged(org.msp_dir), ca, tlsca)
        for ident in layout.users(org):
            _enroll(ident, staged(ident.home), ca, tlsca, [ident.name])
        for node in layout.nodes:
            if node.org.key == org.key:
                _enroll(node.identity, staged(node.identity.home), ca, tlsca, node_tls_sans(node))
    shutil.rmtree(layout.crypto_dir, ignore_errors=True)
    staging.rename(layout.crypto_dir)
    return True


@dataclass(frozen=True)
class ChaincodeTLS:
    """TLS material of one org's chaincode server (SPEC §10: the peer dials it with TLS and a client certificate).

    Both pairs are issued by the org's TLS CA: the server's (``sans``: every name the peer may dial) and the
    peer's client pair, which the package's connection.json carries. The server trusts client certificates of the
    org's TLS CA only (``ca_cert``), and the peer checks the server against the same CA.
    """

    dir: Path
    org: Org
    sans: tuple[str, ...]

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.dir / "client.key"

    def complete(self) -> bool:
        return all(f.exists() for f in (self.ca_cert, self.server_cert, self.server_key, self.client_cert,
                                        self.client_key))

    def ensure(self) -> bool:
        """Issue the pairs from the org's TLS CA unless present (they stay stable: the package ID depends on them).
        Returns whether anything was written."""
        if self.complete():
            return False
        tlsca = load_authority(self.org.tlsca_dir, self.org.tls_ca_cert_file)
        server_key, server_cert = tlsca.issue(self.org, self.sans[0], ou="peer", tls_sans=list(self.sans))
        client_name = f"peer-client.{self.org.domain}"
        client_key, client_cert = tlsca.issue(self.org, client_name, ou="peer", tls_sans=[client_name])
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_private(self.server_key, _key_pem(server_key))
        _write_private(self.client_key, _key_pem(client_key))
        self.server_cert.write_bytes(_cert_pem(server_cert))
        self.client_cert.write_bytes(_cert_pem(client_cert))
        self.ca_cert.write_bytes(_cert_pem(tlsca.cert))
        return True


class CryptoMaterialError(GxError):
    """The devnet's crypto material is missing or unreadable; the message names the file."""


def load_authority(ca_dir: Path, cert_file: Path) -> CertificateAuthority:
    """An org's CA as ``CertificateAuthority.save`` wrote it (``priv_sk`` + certificate)."""
    key_file = ca_dir / "priv_sk"
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise CryptoMaterialError(f"cannot load the CA in {ca_dir}: {exc}",
                                  hint="create the devnet's crypto material first (gx devnet up)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoMaterialError(f"{key_file} is not an EC private key")
    return CertificateAuthority(key, cert)


def certificate_attributes(cert: x509.Certificate) -> dict[str, str]:
    """The Fabric CA attributes a certificate carries (empty when it has none)."""
    try:
        ext = cert.extensions.get_extension_for_oid(FABRIC_CA_ATTRIBUTE_OID)
    except x509.ExtensionNotFound:
        return {}
    value = ext.value
    assert isinstance(value, x509.UnrecognizedExtension)
    return dict(json.loads(value.value).get("attrs", {}))
