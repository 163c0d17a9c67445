"""Typed settings: defaults of the local profile, environment overrides, and clear refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gxlib.config import DevnetSettings, Environment, environment_profile


def test_local_profile_defaults_mirror_the_spec_topology() -> None:
    settings = DevnetSettings()
    assert settings.channel == "gxchannel-local"
    assert [o.node_name for o in settings.peer_orgs] == ["peer0-org1", "peer0-org2"]
    assert settings.orderer_org.node.name == "orderer0"
    # A lone transaction must not wait Fabric's 2 s default batch timeout.
    assert settings.batch_timeout_ms < 2000


def test_kubernetes_profiles_follow_the_env_naming() -> None:
    testnet = environment_profile("testnet")
    assert testnet.channel == "gxchannel-testnet"
    assert testnet.org_msp_ids == ("Org1Testnet", "Org2Testnet")
    assert testnet.backend_namespace == "backend-testnet"
    assert testnet.chaincode_name == "gxtv3"
    assert environment_profile(Environment.LOCAL).on_kubernetes is False


def test_environment_overrides_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GX_DEVNET_CHANNEL", "other-channel")
    monkeypatch.setenv("GX_DEVNET_PORT_OFFSET", "1000")
    monkeypatch.setenv("GX_DEVNET_ORDERER_ORG__NODE__ADMIN_PORT", "8053")
    settings = DevnetSettings()
    assert settings.channel == "other-channel"
    assert settings.port(settings.orderer_org.node.admin_port) == 9053


def test_invalid_channel_name_is_refused_with_the_rule() -> None:
    with pytest.raises(ValidationError, match="not valid for Fabric"):
        DevnetSettings(channel="GX_Channel")


def test_super_admin_org_must_exist() -> None:
    with pytest.raises(ValidationError, match="super_admin_org"):
        DevnetSettings(identities={"super_admin_org": "org9"})  # type: ignore[arg-type]
