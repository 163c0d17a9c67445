"""Where everything of one devnet lives inside its state directory, and what its nodes and identities are.

This module is the single source of truth for paths and names; the crypto, config, channel and process
modules only ask it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from gxlib.config import DevnetSettings

ORDERER_ORG_KEY = "orderer"


class NodeRole(StrEnum):
    ORDERER = "orderer"
    PEER = "peer"


class IdentityRole(StrEnum):
    """The NodeOU a certificate carries."""

    ADMIN = "admin"
    CLIENT = "client"
    PEER = "peer"
    ORDERER = "orderer"


@dataclass(frozen=True)
class Org:
    key: str
    msp_id: str
    domain: str
    dir: Path

    @property
    def msp_dir(self) -> Path:
        """The org-level MSP (CA certs + NodeOU config) that goes into the channel configuration."""
        return self.dir / "msp"

    @property
    def ca_dir(self) -> Path:
        return self.dir / "ca"

    @property
    def tlsca_dir(self) -> Path:
        return self.dir / "tlsca"

    @property
    def ca_cert_file(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def tls_ca_cert_file(self) -> Path:
        return self.tlsca_dir / "tlsca.pem"


@dataclass(frozen=True)
class Identity:
    """An enrolled identity: signing certificate and key (MSP dir) plus a TLS key pair."""

    name: str
    org: Org
    role: IdentityRole
    home: Path
    attributes: dict[str, str] = field(default_factory=dict)
    # Nodes present their TLS pair as a server; users as a client. The file names say which.
    tls_kind: str = "client"

    @property
    def msp_id(self) -> str:
        return self.org.msp_id

    @property
    def msp_dir(self) -> Path:
        return self.home / "msp"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def cert_file(self) -> Path:
        return self.msp_dir / "signcerts" / "cert.pem"

    @property
    def key_file(self) -> Path:
        return self.msp_dir / "keystore" / "priv_sk"

    @property
    def tls_cert_file(self) -> Path:
        return self.tls_dir / f"{self.tls_kind}.crt"

    @property
    def tls_key_file(self) -> Path:
        return self.tls_dir / f"{self.tls_kind}.key"

    @property
    def tls_ca_file(self) -> Path:
        return self.tls_dir / "ca.crt"


@dataclass(frozen=True)
class Node:
    """One Fabric process of the devnet."""

    name: str
    role: NodeRole
    org: Org
    host: str
    listen_port: int
    operations_port: int
    # orderer: channel participation (admin) API; peer: chaincode listener
    admin_port: int | None
    chaincode_port: int | None
    identity: Identity
    dir: Path

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.listen_port}"

    @property
    def operations_url(self) -> str:
        return f"http://{self.host}:{self.operations_port}"

    @property
    def admin_url(self) -> str | None:
        return f"https://{self.host}:{self.admin_port}" if self.admin_port else None

    @property
    def ports(self) -> dict[str, int]:
        named = {"listen": self.listen_port, "operations": self.operations_port}
        if self.admin_port:
            named["admin"] = self.admin_port
        if self.chaincode_port:
            named["chaincode"] = self.chaincode_port
        return named

    @property
    def config_file(self) -> Path:
        return self.dir / ("orderer.yaml" if self.role is NodeRole.ORDERER else "core.yaml")

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_file(self) -> Path:
        return self.dir / "node.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "node.pid"

    @property
    def marker(self) -> tuple[str, str]:
        """Each node runs with its own directory as FABRIC_CFG_PATH: that is how its process is found."""
        return ("FABRIC_CFG_PATH", str(self.dir))  # processes.FABRIC_NODE_MARKER


class DevnetLayout:
    """Paths, orgs, identities and nodes of the devnet described by ``settings``."""

    def __init__(self, settings: DevnetSettings) -> None:
        self.settings = settings
        self.root = settings.state_dir.expanduser().resolve()

    # --- directories -------------------------------------------------------------------------------------
    @property
    def crypto_dir(self) -> Path:
        return self.root / "crypto"

    @property
    def channel_dir(self) -> Path:
        return self.root / "channel"

    @property
    def nodes_dir(self) -> Path:
        return self.root / "nodes"

    @property
    def configtx_file(self) -> Path:
        return self.channel_dir / "configtx.yaml"

    @property
    def genesis_block(self) -> Path:
        return self.channel_dir / f"{self.settings.channel}.block"

    @property
    def settings_file(self) -> Path:
        """The settings the network was created with; later commands must match them."""
        return self.root / "devnet.json"

    # --- orgs --------------------------------------------------------------------------------------------
    @property
    def orderer_org(self) -> Org:
        o = self.settings.orderer_org
        return Org(ORDERER_ORG_KEY, o.msp_id, o.domain, self.crypto_dir / o.domain)

    @property
    def peer_orgs(self) -> list[Org]:
        return [Org(o.key, o.msp_id, o.domain, self.crypto_dir / o.domain) for o in self.settings.peer_orgs]

    @property
    def orgs(self) -> list[Org]:
        return [self.orderer_org, *self.peer_orgs]

    def org(self, key: str) -> Org:
        for org in self.orgs:
            if org.key == key:
                return org
        raise KeyError(f"no org {key!r}; known: {[o.key for o in self.orgs]}")

    # --- identities --------------------------------------------------------------------------------------
    def _user(self, org: Org, name: str, role: IdentityRole, attributes: dict[str, str] | None = None) -> Identity:
        return Identity(f"{name}@{org.domain}", org, role, org.dir / "users" / f"{name}@{org.domain}",
                        attributes or {})

    def admin(self, org_key: str) -> Identity:
        return self._user(self.org(org_key), self.settings.identities.admin, IdentityRole.ADMIN)

    def users(self, org: Org) -> list[Identity]:
        """Every user identity of an org: admin, client, and on the super-admin org the super admin and the
        service identity."""
        names = self.settings.identities
        found = [self.admin(org.key)]
        if org.key == ORDERER_ORG_KEY:
            return found
        found.append(self._user(org, names.client, IdentityRole.CLIENT))
        if org.key == names.super_admin_org:
            found.append(self._user(org, names.super_admin, IdentityRole.CLIENT,
                                    {names.super_admin_attribute: "true"}))
            found.append(self._user(org, names.service, IdentityRole.CLIENT))
        return found

    def identity(self, name: str) -> Identity:
        """Look an identity up by full name (``Admin@org1.gx.local``) or node name."""
        for org in self.orgs:
            for ident in self.users(org):
                if name in (ident.name, ident.name.split("@")[0] + "@" + org.key):
                    return ident
        for node in self.nodes:
            if name in (node.name, node.identity.name):
                return node.identity
        raise KeyError(name)

    @property
    def super_admin(self) -> Identity:
        names = self.settings.identities
        return self._user(self.org(names.super_admin_org), names.super_admin, IdentityRole.CLIENT,
                          {names.super_admin_attribute: "true"})

    @property
    def service_identity(self) -> Identity:
        names = self.settings.identities
        return self._user(self.org(names.super_admin_org), names.service, IdentityRole.CLIENT)

    # --- nodes -------------------------------------------------------------------------------------------
    @property
    def orderer(self) -> Node:
        s = self.settings
        o = s.orderer_org.node
        org = self.orderer_org
        ident = Identity(f"{o.name}.{org.domain}", org, IdentityRole.ORDERER, org.dir / "nodes" / o.name,
                         tls_kind="server")
        return Node(o.name, NodeRole.ORDERER, org, s.host, s.port(o.listen_port), s.port(o.operations_port),
                    s.port(o.admin_port), None, ident, self.nodes_dir / o.name)

    @property
    def peers(self) -> list[Node]:
        s = self.settings
        found = []
        for org_settings, org in zip(s.peer_orgs, self.peer_orgs, strict=True):
            ident = Identity(f"{org_settings.peer_name}.{org.domain}", org, IdentityRole.PEER,
                             org.dir / "nodes" / org_settings.peer_name, tls_kind="server")
            found.append(Node(org_settings.node_name, NodeRole.PEER, org, s.host, s.port(org_settings.listen_port),
                              s.port(org_settings.operations_port), None, s.port(org_settings.chaincode_port),
                              ident, self.nodes_dir / org_settings.node_name))
        return found

    @property
    def nodes(self) -> list[Node]:
        return [self.orderer, *self.peers]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r}; nodes are {', '.join(n.name for n in self.nodes)}")

    def peer_of(self, org_key: str) -> Node:
        for node in self.peers:
            if node.org.key == org_key:
                return node
        raise KeyError(f"no peer org {org_key!r}; peer orgs are {', '.join(o.key for o in self.peer_orgs)}")
