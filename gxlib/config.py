"""Typed settings, one model per concern, with defaults for the ``local`` profile (SPEC §1).

Every host, port and name the code uses comes from here; nothing is hard-coded in logic. Values can be
overridden from the environment: ``GX_DEVNET_CHANNEL=other``, ``GX_DEVNET_PORT_OFFSET=1000``,
``GX_DEVNET_STATE_DIR=/tmp/gx``, ``GX_FABRIC_CACHE_ROOT=...`` and nested ones with ``__``
(``GX_DEVNET_ORDERER__ADMIN_PORT=17053``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "gxlib"


class Environment(StrEnum):
    LOCAL = "local"
    DEVNET = "devnet"
    TESTNET = "testnet"
    MAINNET = "mainnet"


class EnvironmentProfile(BaseModel):
    """The names that differ between environments (SPEC §1)."""

    env: Environment
    channel: str
    chaincode_name: str = "gxtv3"
    org_msp_ids: tuple[str, str]
    backend_namespace: str
    monitoring_namespace: str = "fabric"
    on_kubernetes: bool


def environment_profile(env: Environment | str) -> EnvironmentProfile:
    """The profile of ``env``: channel ``gxchannel-<env>``, MSP IDs, namespaces."""
    env = Environment(env)
    if env is Environment.LOCAL:
        return EnvironmentProfile(
            env=env,
            channel="gxchannel-local",
            org_msp_ids=("Org1MSP", "Org2MSP"),
            backend_namespace="backend-local",
            on_kubernetes=False,
        )
    title = env.value.capitalize()
    return EnvironmentProfile(
        env=env,
        channel=f"gxchannel-{env.value}",
        org_msp_ids=(f"Org1{title}", f"Org2{title}"),
        backend_namespace=f"backend-{env.value}",
        on_kubernetes=True,
    )


def _default_state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME)) / "devnet"


def _default_cache_root() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


class FabricBuildSettings(BaseSettings):
    """Where the Fabric binaries are built and cached (``GX_FABRIC_*``)."""

    model_config = SettingsConfigDict(env_prefix="GX_FABRIC_", extra="ignore")

    cache_root: Path = Field(default_factory=_default_cache_root)
    go_binary: str = "go"


class OrdererNodeSettings(BaseModel):
    name: str = "orderer0"
    listen_port: int = 7050
    admin_port: int = 7053
    operations_port: int = 9443


class OrdererOrgSettings(BaseModel):
    msp_id: str = "OrdererMSP"
    domain: str = "orderer.gx.local"
    node: OrdererNodeSettings = OrdererNodeSettings()


class PeerOrgSettings(BaseModel):
    key: str = Field(description="short name used on the command line, e.g. org1")
    msp_id: str
    domain: str
    peer_name: str = "peer0"
    listen_port: int
    chaincode_port: int
    operations_port: int
    # Where this org's chaincode-as-a-service server listens (the peer dials it).
    ccaas_port: int

    @property
    def node_name(self) -> str:
        return f"{self.peer_name}-{self.key}"


def _default_peer_orgs() -> list[PeerOrgSettings]:
    msp1, msp2 = environment_profile(Environment.LOCAL).org_msp_ids
    return [
        PeerOrgSettings(key="org1", msp_id=msp1, domain="org1.gx.local",
                        listen_port=7051, chaincode_port=7052, operations_port=9444, ccaas_port=7058),
        PeerOrgSettings(key="org2", msp_id=msp2, domain="org2.gx.local",
                        listen_port=9051, chaincode_port=9052, operations_port=9445, ccaas_port=9058),
    ]


class IdentityNames(BaseModel):
    """Names of the identities the devnet issues (SPEC §2.1, §3.1)."""

    admin: str = "Admin"
    client: str = "User1"
    super_admin: str = "SuperAdmin"
    service: str = "GxService"
    super_admin_org: str = "org1"
    # Fabric CA attribute that makes a certificate a GX super admin (SPEC §2.1).
    super_admin_attribute: str = "gx_super_admin"


class DevnetSettings(BaseSettings):
    """The local Fabric network (``GX_DEVNET_*``)."""

    model_config = SettingsConfigDict(env_prefix="GX_DEVNET_", env_nested_delimiter="__", extra="ignore")

    state_dir: Path = Field(default_factory=_default_state_dir)
    host: str = "127.0.0.1"
    channel: str = environment_profile(Environment.LOCAL).channel
    port_offset: int = Field(default=0, ge=0, le=50000,
                             description="added to every port, to run a second network beside the first")
    orderer_org: OrdererOrgSettings = OrdererOrgSettings()
    peer_orgs: list[PeerOrgSettings] = Field(default_factory=_default_peer_orgs)
    identities: IdentityNames = IdentityNames()
    # Block cutting: a lone transaction waits at most batch_timeout for its block (Fabric's default is 2 s).
    batch_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    max_message_count: int = Field(default=100, ge=1, le=10_000)
    # The peer's limit on concurrent Gateway requests (core.yaml peer.limits.concurrency.gatewayService).
    gateway_concurrency_limit: int = Field(default=500, ge=1)
    startup_timeout_s: float = Field(default=90.0, gt=0)
    fabric_log_spec: str = "INFO"

    @field_validator("channel")
    @classmethod
    def _channel_name_is_valid(cls, value: str) -> str:
        # Fabric's rule for channel names: lower case letters, digits, dots and dashes, starting with a letter.
        import re

        if not re.fullmatch(r"[a-z][a-z0-9.-]{0,248}", value):
            raise ValueError(
                f"channel name {value!r} is not valid for Fabric: use lower-case letters, digits, '.' "
                "and '-', starting with a letter"
            )
        return value

    @model_validator(mode="after")
    def _names_are_unique(self) -> DevnetSettings:
        keys = [o.key for o in self.peer_orgs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"peer org keys must be unique, got {keys}")
        if self.identities.super_admin_org not in keys:
            raise ValueError(f"identities.super_admin_org {self.identities.super_admin_org!r} is not one of {keys}")
        return self

    def port(self, base: int) -> int:
        """The effective port for a configured base port."""
        return base + self.port_offset

    def peer_org(self, key: str) -> PeerOrgSettings:
        for org in self.peer_orgs:
            if org.key == key:
                return org
        raise KeyError(key)


class BackendPorts(BaseModel):
    """Where the backend services listen on one host by default: the API (it serves its own ``/metrics``) and the
    ``/metrics`` endpoints of the outbox submitter and the projector. The backend binds these ports and the local
    monitoring profile scrapes them, so both take their defaults from here.

        DEFAULT_BACKEND_PORTS.submitter_metrics  # 9101: GX_BACKEND_SUBMITTER_METRICS_PORT's default
    """

    model_config = ConfigDict(frozen=True)

    api: int = 8000
    submitter_metrics: int = 9101
    projector_metrics: int = 9102


DEFAULT_BACKEND_PORTS = BackendPorts()


class ChaincodeSettings(BaseSettings):
    """The GX chaincode as deployed on the local profile (``GX_CHAINCODE_*``)."""

    model_config = SettingsConfigDict(env_prefix="GX_CHAINCODE_", extra="ignore")

    name: str = environment_profile(Environment.LOCAL).chaincode_name
    # Package labels are <label_prefix>_<version>, e.g. gxtv3_1.1 (SPEC §1).
    label_prefix: str = "gxtv3"
    # How long the peer waits to connect to a chaincode server (connection.json dial_timeout).
    dial_timeout: str = "10s"
    startup_timeout_s: float = Field(default=60.0, gt=0)

    def label(self, version: str) -> str:
        return f"{self.label_prefix}_{version}"
