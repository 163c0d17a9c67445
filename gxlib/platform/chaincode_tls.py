"""Peer → chaincode TLS on Kubernetes (SPEC §10, issue 13): each org's chaincode server serves TLS and requires
the peer's client certificate, as on the local profile.

The material is the devnet's :class:`gxlib.devnet.crypto.ChaincodeTLS`, issued by the org's TLS CA of the Fabric
network the environment document describes (its ``state_dir``): the server's pair for every name the peer may
dial (the address the package holds, and the Service's cluster DNS names), and the peer's client pair, which
the org's package carries. The server's half reaches the pod as the Secret the overlays mount read-only
(``chaincode_names(...).tls_secret``, type ``kubernetes.io/tls``)::

    tls = kubernetes_chaincode_tls(document, names, env="devnet", address="gxtv3-org1-devnet.fabric:9999",
                                   chaincode="gxtv3")
    cluster.apply([tls_secret(names, tls)])
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from gxlib.config import DevnetSettings
from gxlib.devnet.crypto import ChaincodeTLS
from gxlib.devnet.network import Devnet
from gxlib.errors import Unavailable
from gxlib.platform.settings import ChaincodeNames

SECRET_TYPE = "kubernetes.io/tls"
# The Secret's keys (the kubernetes.io/tls convention) and the files the chaincode server reads them from: the
# base Deployment mounts the Secret at /etc/gx/chaincode-tls and points CHAINCODE_TLS_CERT, CHAINCODE_TLS_KEY
# and CHAINCODE_CLIENT_CA_CERT at these keys.
CERT_KEY, KEY_KEY, CA_KEY = "tls.crt", "tls.key", "ca.crt"
SECRET_KEYS = (CA_KEY, CERT_KEY, KEY_KEY)


def service_names(names: ChaincodeNames) -> tuple[str, ...]:
    """Every DNS name of the org's chaincode Service inside the cluster."""
    service, namespace = names.deployment, names.namespace
    return (service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local")


def kubernetes_chaincode_tls(document: dict[str, Any], names: ChaincodeNames, *, env: str, address: str,
                             chaincode: str) -> ChaincodeTLS:
    """The org's chaincode TLS material for its server in the cluster, kept in the devnet's state directory next
    to the local profile's (one set per environment and dialled host, so the package ID stays stable); Unavailable
    when the environment document names no devnet whose TLS CA can issue it."""
    state_dir = document.get("state_dir")
    host = address.rpartition(":")[0]
    if not state_dir:
        raise Unavailable("fabric_network_file names no state_dir: the chaincode servers' TLS material is issued by "
                          "the orgs' TLS CAs of the devnet it describes (`gx devnet env --json`)",
                          parameter="fabric_network_file")
    layout = Devnet(DevnetSettings(state_dir=Path(state_dir))).layout
    try:
        org = layout.org(names.org)
    except KeyError as exc:
        raise Unavailable(f"fabric_network_file: the devnet in {state_dir} has no org {names.org}",
                          parameter="fabric_network_file") from exc
    if not (org.tlsca_dir / "priv_sk").is_file():
        raise Unavailable(f"the TLS CA of {names.org} is not in {org.tlsca_dir}: the chaincode server's TLS pair "
                          "cannot be issued (is fabric_network_file the devnet's environment document?)",
                          parameter="fabric_network_file")
    sans = tuple(dict.fromkeys((host, *service_names(names))))
    return ChaincodeTLS(layout.root / "chaincode" / chaincode / names.org / f"tls-{env}-{host}", org, sans)


def _encoded(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def tls_secret(names: ChaincodeNames, tls: ChaincodeTLS) -> dict[str, Any]:
    """The Secret the org's chaincode Deployment mounts: the server's pair and the CA its clients must chain to
    (never the peer's client key: that one is the package's)."""
    tls.ensure()
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": names.tls_secret, "namespace": names.namespace,
                         "labels": {"app.kubernetes.io/component": "chaincode", "gx.io/org": names.org}},
            "data": {CA_KEY: _encoded(tls.ca_cert), CERT_KEY: _encoded(tls.server_cert),
                     KEY_KEY: _encoded(tls.server_key)}}


def secret_drift(deployed: dict[str, Any] | None, wanted: dict[str, Any]) -> str | None:
    """Why the deployed Secret is not the wanted one (``None``: it is)."""
    name = wanted["metadata"]["name"]
    if deployed is None:
        return f"its TLS Secret {name} does not exist"
    if (deployed.get("data") or {}) != wanted["data"]:
        return f"its TLS Secret {name} does not hold the chaincode TLS material of the packages"
    return None
