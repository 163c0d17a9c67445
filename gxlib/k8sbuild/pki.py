"""The certificates and keys of a control plane: a CA, the API server's serving certificate, the API server's
client certificate towards the kubelets, the service-account signing key pair, and bearer tokens for the
clients."""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gxlib.files import write_private


@dataclass(frozen=True)
class ControlPlanePki:
    """Paths of the generated files (all inside one directory)."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_pub: Path
    token_file: Path
    admin_token: str
    kubelet_client_cert: Path
    kubelet_client_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_pki(directory: Path, *, service_ip: str, extra_ips: tuple[str, ...] = (),
              valid_days: int = 1) -> ControlPlanePki:
    """Generate everything into ``directory``; ``service_ip`` is the ``kubernetes`` Service's cluster IP and
    ``extra_ips`` the other addresses the API server is reached at (a node's bridge IP)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=valid_days))

    ca_key = _key()
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("gx-test-ca")).issuer_name(_name("gx-test-ca"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = _key()
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address(service_ip)),
        *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_ips),
    ]
    serving_cert = (
        x509.CertificateBuilder().subject_name(_name("kube-apiserver")).issuer_name(ca_cert.subject)
        .public_key(serving_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # The API server's identity towards the kubelets (exec, logs, port-forward); the kubelet trusts the CA.
    kubelet_client_key = _key()
    kubelet_client_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-kubelet-client"),
                                 x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")]))
        .issuer_name(ca_cert.subject)
        .public_key(kubelet_client_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = _key()

    pki = ControlPlanePki(
        ca_cert=directory / "ca.crt", serving_cert=directory / "apiserver.crt", serving_key=directory / "apiserver.key",
        service_account_key=directory / "sa.key", service_account_pub=directory / "sa.pub",
        token_file=directory / "tokens.csv", admin_token=secrets.token_hex(24),
        kubelet_client_cert=directory / "apiserver-kubelet-client.crt",
        kubelet_client_key=directory / "apiserver-kubelet-client.key",
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.serving_key, serving_key)
    pki.kubelet_client_cert.write_bytes(kubelet_client_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.kubelet_client_key, kubelet_client_key)
    _write_key(pki.service_account_key, sa_key)
    pki.service_account_pub.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    # Static token file: token,user,uid,"group1,group2". One cluster-admin identity for every client here.
    write_private(pki.token_file, f'{pki.admin_token},gx-admin,gx-admin,"system:masters"\n')
    return pki
