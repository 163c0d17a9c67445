"""The Fabric client bundles of the submitter and the projector: what a pod needs to reach the peers, and no more.

A pod has no devnet state directory. It gets a Kubernetes Secret mounted read-only at ``/run/secrets/gx-fabric``,
and ``GX_BACKEND_FABRIC_NETWORK_FILE`` names the ``network.json`` in it. The network file is shaped like
``gx devnet env --json`` (channel, peers, identities, roles) but holds only what the service uses, with file names
relative to its own directory (a Secret volume is one flat directory):

- the identities it signs with — their signing certificate and key; no TLS client keys (the peers do not ask for
  client certificates), no admin or peer keys:
  - the submitter's Secret ``backend-fabric-client``: ``super_admin`` (BootstrapSystem, InitializeCountryData,
    Mint need the ``gx_super_admin`` attribute) and ``service`` (every other command, every submit and status
    query);
  - the projector's Secret ``backend-fabric-reader``: ``service`` only (its event stream); it never gets the
    super-admin key;
- the peers the Gateway connects to (the peer of those identities' org): endpoint, TLS CA, TLS server name.

    files = fabric_client_bundle(devnet.environment(), host="10.0.0.5")   # {"network.json": b"...", ...}
    cluster.apply([fabric_client_secret(files, "backend-devnet")])
    environment = load_network_file(Path("/run/secrets/gx-fabric/network.json"))
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gxlib.backend.commands import FabricIdentity
from gxlib.errors import GxError
from gxlib.files import write_private

FABRIC_CLIENT_SECRET = "backend-fabric-client"  # the submitter's (SERVICE_ROLES)
FABRIC_READER_SECRET = "backend-fabric-reader"  # the projector's (READER_ROLES)
FABRIC_CLIENT_MOUNT_DIR = PurePosixPath("/run/secrets/gx-fabric")
NETWORK_FILE_NAME = "network.json"
NETWORK_FILE_VARIABLE = "GX_BACKEND_FABRIC_NETWORK_FILE"
# The environment roles the submitter signs as (fabric_tx.DEFAULT_IDENTITIES), and the projector (its block stream).
SERVICE_ROLES: tuple[str, ...] = tuple(identity.value for identity in FabricIdentity)
READER_ROLES: tuple[str, ...] = (FabricIdentity.SERVICE.value,)


class FabricClientError(GxError):
    """The Fabric client bundle cannot be built, or the network file cannot be used; names the file and key."""


# --- the network file's schema -----------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BundlePeer(_Strict):
    name: str
    org: str
    msp_id: str
    endpoint: str
    tls_ca_file: str
    tls_server_name: str


class BundleIdentity(_Strict):
    name: str
    org: str
    msp_id: str
    role: str
    cert_file: str
    key_file: str
    attributes: dict[str, str] = {}


class NetworkFile(_Strict):
    channel: str
    peers: list[BundlePeer]
    identities: list[BundleIdentity]
    roles: dict[str, str]


# --- building the bundle -----------------------------------------------------------------------------------------
def _read(path: Any, what: str) -> bytes:
    try:
        return Path(str(path)).read_bytes()
    except OSError as exc:
        raise FabricClientError(f"cannot read {what} {path}: {exc}",
                                hint="is the devnet's crypto material there (gx devnet up)?") from exc


def with_host(endpoint: str, host: str) -> str:
    """``endpoint`` (``host:port``) with its host replaced; an IPv6 host is bracketed."""
    _, _, port = endpoint.rpartition(":")
    if not port.isdigit():
        raise FabricClientError(f"endpoint {endpoint!r} has no port")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _identity(environment: Mapping[str, Any], role: str) -> Mapping[str, Any]:
    name = environment.get("roles", {}).get(role)
    for ident in environment.get("identities", []):
        if ident["name"] == name:
            return dict(ident)
    raise FabricClientError(f"the Fabric environment has no identity for role {role!r} (roles: "
                            f"{sorted(environment.get('roles', {}))})")


def fabric_client_bundle(environment: Mapping[str, Any], *, host: str | None = None,
                         roles: Iterable[str] = SERVICE_ROLES) -> dict[str, bytes]:
    """The files of the ``backend-fabric-client`` Secret: ``network.json`` and the files it names.

    ``environment`` is ``Devnet.environment()``; ``host`` replaces the host of every peer endpoint (a pod dials the
    node's address, not the host's loopback) while the TLS server names stay the nodes' names. ``roles`` are the
    environment roles whose signing certificate and key go in (default: the submitter's and projector's).
    """
    files: dict[str, bytes] = {}
    identities: list[dict[str, Any]] = []
    role_names: dict[str, str] = {}
    for role in dict.fromkeys(roles):
        ident = _identity(environment, role)
        files[f"{role}-cert.pem"] = _read(ident["cert_file"], f"the certificate of {ident['name']}")
        files[f"{role}-key.pem"] = _read(ident["key_file"], f"the private key of {ident['name']}")
        identities.append({"name": ident["name"], "org": ident["org"], "msp_id": ident["msp_id"],
                           "role": ident["role"], "cert_file": f"{role}-cert.pem", "key_file": f"{role}-key.pem",
                           "attributes": dict(ident.get("attributes") or {})})
        role_names[role] = ident["name"]
    orgs = {ident["org"] for ident in identities}
    peers: list[dict[str, Any]] = []
    for peer in environment.get("peers", []):
        if peer["org"] not in orgs:
            continue
        ca_name = f"{peer['org']}-tls-ca.pem"
        files[ca_name] = _read(peer["tls_ca_file"], f"the TLS CA of {peer['name']}")
        peers.append({"name": peer["name"], "org": peer["org"], "msp_id": peer["msp_id"],
                      "endpoint": with_host(peer["endpoint"], host) if host else peer["endpoint"],
                      "tls_ca_file": ca_name, "tls_server_name": peer["tls_server_name"]})
    missing = sorted(orgs - {p["org"] for p in peers})
    if missing:
        raise FabricClientError(f"the Fabric environment has no peer of org(s) {', '.join(missing)}, which the "
                                f"identities {sorted(role_names.values())} connect through")
    network = NetworkFile.model_validate({"channel": environment["channel"], "peers": peers,
                                          "identities": identities, "roles": role_names})
    files[NETWORK_FILE_NAME] = (json.dumps(network.model_dump(), indent=2) + "\n").encode()
    return files


def write_bundle(files: Mapping[str, bytes], directory: Path) -> Path:
    """Write a bundle into ``directory`` as a Secret volume shows it (keys 0600); returns the network file."""
    for name, data in files.items():
        write_private(directory / name, data)
    return directory / NETWORK_FILE_NAME


def fabric_client_secret(files: Mapping[str, bytes], namespace: str, name: str = FABRIC_CLIENT_SECRET
                         ) -> dict[str, Any]:
    """Secret ``name`` (the submitter's ``backend-fabric-client``, or the projector's ``backend-fabric-reader``) of
    ``namespace`` (``backend-<env>``) holding a bundle, to apply."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/part-of": "gx-backend"}},
            "data": {name: base64.b64encode(data).decode("ascii") for name, data in sorted(files.items())}}


# --- loading it in the pod ---------------------------------------------------------------------------------------
def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load_network_file(path: Path) -> dict[str, Any]:
    """The client environment in ``path`` (a bundle's ``network.json``) with every file path made absolute.

    Raises :class:`FabricClientError` naming the file and the key when the file is missing, not JSON, lacks a key,
    or names a file that is not there."""
    hint = (f"{NETWORK_FILE_VARIABLE} must name the {NETWORK_FILE_NAME} of the service's Fabric client Secret "
            f"({FABRIC_CLIENT_SECRET} or {FABRIC_READER_SECRET}, written by "
            "gxlib.backend.fabric_client.fabric_client_bundle)")
    try:
        text = path.read_text()
    except OSError as exc:
        raise FabricClientError(f"cannot read the Fabric network file {path}: {exc.strerror or exc}",
                                hint=hint) from exc
    try:
        network = NetworkFile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FabricClientError(f"the Fabric network file {path} is not valid: {_where(first['loc'])}: "
                                f"{first['msg']} ({exc.error_count()} problem(s))", hint=hint) from exc
    base = path.parent

    def resolved(key: str, name: str) -> str:
        file = base / name
        if not file.is_file():
            raise FabricClientError(f"the Fabric network file {path} names {name} at {key}, which is not in "
                                    f"{base}", hint=hint)
        return str(file)

    environment: dict[str, Any] = network.model_dump()
    for i, peer in enumerate(environment["peers"]):
        peer["tls_ca_file"] = resolved(f"peers[{i}].tls_ca_file", peer["tls_ca_file"])
    for i, ident in enumerate(environment["identities"]):
        ident["cert_file"] = resolved(f"identities[{i}].cert_file", ident["cert_file"])
        ident["key_file"] = resolved(f"identities[{i}].key_file", ident["key_file"])
    known = {ident["name"] for ident in environment["identities"]}
    for role, name in environment["roles"].items():
        if name not in known:
            raise FabricClientError(f"the Fabric network file {path} maps roles.{role} to {name!r}, which is not "
                                    f"one of its identities ({', '.join(sorted(known))})", hint=hint)
    return environment
