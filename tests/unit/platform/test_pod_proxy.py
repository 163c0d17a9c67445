"""The HTTP access to a pod through the API server carries the kubeconfig's CA, client certificate and token.

The TLS part is proven by a handshake in memory (no socket): a server that trusts only the kubeconfig's CA and
demands a client certificate accepts the context built from the kubeconfig, and refuses one without it.
"""

from __future__ import annotations

import base64
import datetime
import ssl
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from gxlib.platform.pod_proxy import ApiServerAccess, pod_proxy_url

SERVER_NAME = "kube.gx.test"
TOKEN = "t0ken-of-the-kubeconfig"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name, common_name: str, usage: x509.ObjectIdentifier,
           sans: list[x509.GeneralName] | None = None) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


class Pki:
    """A CA, the API server's serving certificate and a client certificate for the kubeconfig's user."""

    def __init__(self, directory: Path) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gx-unit-ca")])
        now = datetime.datetime.now(datetime.UTC)
        ca = (x509.CertificateBuilder().subject_name(self.ca_name).issuer_name(self.ca_name)
              .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(self.ca_key, hashes.SHA256()))
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        self.server_cert, self.server_key = _issue(self.ca_key, self.ca_name, "kube-apiserver",
                                                   ExtendedKeyUsageOID.SERVER_AUTH, [x509.DNSName(SERVER_NAME)])
        self.client_cert, self.client_key = _issue(self.ca_key, self.ca_name, "gx-operator",
                                                   ExtendedKeyUsageOID.CLIENT_AUTH)
        self.directory = directory
        for name, content in (("ca.crt", self.ca_pem), ("server.crt", self.server_cert),
                              ("server.key", self.server_key)):
            (directory / name).write_bytes(content)

    def kubeconfig(self, *, token: bool = True, insecure: bool = False) -> Path:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        cluster: dict[str, object] = {"server": f"https://{SERVER_NAME}:6443"}
        if insecure:
            cluster["insecure-skip-tls-verify"] = True
        else:
            cluster["certificate-authority-data"] = b64(self.ca_pem)
        user: dict[str, object] = {"client-certificate-data": b64(self.client_cert),
                                   "client-key-data": b64(self.client_key)}
        if token:
            user["token"] = TOKEN
        path = self.directory / f"kubeconfig-{int(token)}{int(insecure)}.yaml"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "ops",
            "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "ops", "context": {"cluster": "c", "user": "u"}}]}))
        return path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.directory / "server.crt", self.directory / "server.key")
        context.load_verify_locations(cafile=str(self.directory / "ca.crt"))
        context.verify_mode = ssl.CERT_REQUIRED  # the API server demands the client certificate
        return context


def _configuration(kubeconfig: Path) -> k8s_client.Configuration:
    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return configuration


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> x509.Certificate:
    """A TLS handshake between two contexts over memory BIOs; returns the client certificate the server saw."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=SERVER_NAME)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", c), ("server", s)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if all(done.values()):
            seen = s.getpeercert(binary_form=True)
            assert seen is not None
            return x509.load_der_x509_certificate(seen)
    raise AssertionError(f"handshake did not finish: {done}")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def test_the_pod_proxy_url_names_namespace_pod_and_port() -> None:
    assert (pod_proxy_url("https://k8s.example:6443/", "fabric", "prometheus-0", 9090)
            == "https://k8s.example:6443/api/v1/namespaces/fabric/pods/prometheus-0:9090/proxy")


def test_access_carries_the_kubeconfigs_ca_client_certificate_and_token(pki: Pki) -> None:
    access = ApiServerAccess.from_configuration(_configuration(pki.kubeconfig()))
    assert access.server == f"https://{SERVER_NAME}:6443" and access.verify and access.check_hostname
    assert access.ca_file and Path(access.ca_file).read_bytes() == pki.ca_pem
    assert access.cert_file and Path(access.cert_file).read_bytes() == pki.client_cert
    assert access.key_file and Path(access.key_file).read_bytes() == pki.client_key
    assert dict(access.headers) == {"authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in repr(access)  # a record that prints the access never shows the token


def test_the_tls_context_passes_a_client_certificate_handshake(pki: Pki) -> None:
    access = ApiServerAccess.from_configuration(_configuration(pki.kubeconfig()))
    seen = _handshake(access.ssl_context(), pki.server_context())
    assert seen.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gx-operator"


def test_without_the_kubeconfigs_ca_or_client_certificate_the_handshake_fails(pki: Pki) -> None:
    stranger = ssl.create_default_context()  # the system's trust store only
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(stranger, pki.server_context())
    anonymous = ssl.create_default_context(cafile=str(pki.directory / "ca.crt"))  # trusts the server, no certificate
    with pytest.raises(ssl.SSLError):
        _handshake(anonymous, pki.server_context())


def test_the_requests_session_carries_the_same_access(pki: Pki) -> None:
    access = ApiServerAccess.from_configuration(_configuration(pki.kubeconfig()))
    session = access.requests_session()
    assert session.verify == access.ca_file
    assert session.cert == (access.cert_file, access.key_file)
    assert session.headers["authorization"] == f"Bearer {TOKEN}"
    assert session.trust_env is False


def test_insecure_skip_tls_verify_turns_verification_off_and_a_certificate_only_user_sends_no_token(pki: Pki) -> None:
    access = ApiServerAccess.from_configuration(_configuration(pki.kubeconfig(token=False, insecure=True)))
    assert not access.verify and dict(access.headers) == {}
    context = access.ssl_context()
    assert context.verify_mode is ssl.CERT_NONE and not context.check_hostname
    assert access.requests_session().verify is False
