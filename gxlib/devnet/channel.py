"""The application channel: configtx.yaml, its genesis block, and joining the orderer and the peers.

No system channel: the orderer joins through the channel participation API with the genesis block, and
each peer joins with the same block. The org definitions carry the anchor peers, so the genesis block
already tells each org how to reach the other (the Gateway needs that to collect endorsements).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.layout import DevnetLayout, Org
from gxlib.devnet.peercli import PeerCli
from gxlib.errors import GxError

PROFILE = "GXApplicationChannel"
PARTICIPATION_PATH = "/participation/v1/channels"


class ChannelError(GxError):
    """Creating or joining the channel failed; names the node and the channel."""


def _signature_policy(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _implicit(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _org_definition(org: Org, *, orderer_endpoints: list[str] | None = None,
                    anchor: tuple[str, int] | None = None) -> dict[str, Any]:
    m = org.msp_id
    is_orderer_org = orderer_endpoints is not None
    members = f"OR('{m}.member')" if is_orderer_org else f"OR('{m}.admin', '{m}.peer', '{m}.client')"
    writers = f"OR('{m}.member')" if is_orderer_org else f"OR('{m}.admin', '{m}.client')"
    definition: dict[str, Any] = {
        "Name": m,
        "ID": m,
        "MSPDir": str(org.msp_dir),
        "Policies": {
            "Readers": _signature_policy(members),
            "Writers": _signature_policy(writers),
            "Admins": _signature_policy(f"OR('{m}.admin')"),
            "Endorsement": _signature_policy(f"OR('{m}.peer')") if not is_orderer_org
            else _signature_policy(f"OR('{m}.member')"),
        },
    }
    if orderer_endpoints:
        definition["OrdererEndpoints"] = orderer_endpoints
    if anchor:
        definition["AnchorPeers"] = [{"Host": anchor[0], "Port": anchor[1]}]
    return definition


def configtx_document(install: FabricInstall, layout: DevnetLayout) -> dict[str, Any]:
    """configtx.yaml for one Raft orderer and the peer orgs; ACLs come from Fabric's template."""
    template = yaml.safe_load((install.config_dir / "configtx.yaml").read_text())
    s = layout.settings
    orderer = layout.orderer
    orderer_org = _org_definition(layout.orderer_org, orderer_endpoints=[orderer.endpoint])
    peer_orgs = [_org_definition(peer.org, anchor=(peer.host, peer.listen_port)) for peer in layout.peers]
    application = {
        "ACLs": template["Application"]["ACLs"],
        "Organizations": peer_orgs,
        "Policies": {
            "Readers": _implicit("ANY Readers"),
            "Writers": _implicit("ANY Writers"),
            "Admins": _implicit("MAJORITY Admins"),
            "LifecycleEndorsement": _implicit("MAJORITY Endorsement"),
            "Endorsement": _implicit("MAJORITY Endorsement"),
        },
        "Capabilities": {"V2_5": True},
    }
    orderer_section = {
        "OrdererType": "etcdraft",
        "BatchTimeout": f"{s.batch_timeout_ms}ms",
        "BatchSize": {"MaxMessageCount": s.max_message_count, "AbsoluteMaxBytes": "10 MB",
                      "PreferredMaxBytes": "2 MB"},
        "MaxChannels": 0,
        "EtcdRaft": {
            "Consenters": [{
                "Host": orderer.host,
                "Port": orderer.listen_port,
                "ClientTLSCert": str(orderer.identity.tls_cert_file),
                "ServerTLSCert": str(orderer.identity.tls_cert_file),
            }],
            "Options": template["Orderer"]["EtcdRaft"]["Options"],
        },
        "Organizations": [orderer_org],
        "Policies": {
            "Readers": _implicit("ANY Readers"),
            "Writers": _implicit("ANY Writers"),
            "Admins": _implicit("MAJORITY Admins"),
            "BlockValidation": _implicit("ANY Writers"),
        },
        "Capabilities": {"V2_0": True},
    }
    channel = {
        "Policies": {
            "Readers": _implicit("ANY Readers"),
            "Writers": _implicit("ANY Writers"),
            "Admins": _implicit("MAJORITY Admins"),
        },
        "Capabilities": {"V2_0": True},
    }
    return {
        "Organizations": [orderer_org, *peer_orgs],
        "Profiles": {PROFILE: {**channel, "Orderer": orderer_section, "Application": application}},
    }


def create_genesis_block(install: FabricInstall, layout: DevnetLayout) -> bool:
    """Write configtx.yaml and the channel's genesis block. Returns False if the block already exists."""
    if layout.genesis_block.exists():
        return False
    layout.channel_dir.mkdir(parents=True, exist_ok=True)
    layout.configtx_file.write_text(yaml.safe_dump(configtx_document(install, layout), sort_keys=False))
    partial = layout.genesis_block.with_suffix(".block.partial")
    cmd = [str(install.binary("configtxgen")), "-profile", PROFILE, "-channelID", layout.settings.channel,
           "-outputBlock", str(partial)]
    proc = subprocess.run(cmd, env={**os.environ, "FABRIC_CFG_PATH": str(layout.channel_dir)},
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ChannelError(f"configtxgen could not create the genesis block of {layout.settings.channel}:\n"
                           f"{proc.stderr.strip()[-2000:]}")
    partial.rename(layout.genesis_block)
    return True


def _orderer_admin_client(layout: DevnetLayout) -> httpx.Client:
    # The admin API requires mutual TLS with a client certificate from the orderer org's TLS CA.
    admin = layout.admin(layout.orderer_org.key)
    context = ssl.create_default_context(cafile=str(layout.orderer.identity.tls_ca_file))
    context.load_cert_chain(str(admin.tls_cert_file), str(admin.tls_key_file))
    return httpx.Client(base_url=layout.orderer.admin_url or "", verify=context, timeout=10.0)


def _admin_request(layout: DevnetLayout, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        with _orderer_admin_client(layout) as client:
            return client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ChannelError(f"orderer {layout.orderer.name} admin API {layout.orderer.admin_url} failed: "
                           f"{exc.__class__.__name__}: {exc}") from exc


def orderer_channel_info(layout: DevnetLayout) -> dict[str, Any] | None:
    """The orderer's view of the channel (name, status, consensusRelation, height), None if not joined."""
    response = _admin_request(layout, "GET", f"{PARTICIPATION_PATH}/{layout.settings.channel}")
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise ChannelError(f"orderer {layout.orderer.name} answered {response.status_code} for channel "
                           f"{layout.settings.channel}: {response.text.strip()}")
    return dict(response.json())


def join_orderer(layout: DevnetLayout) -> bool:
    """Join the orderer to the channel with the genesis block. Returns False if it had joined already."""
    if orderer_channel_info(layout) is not None:
        return False
    block = Path(layout.genesis_block).read_bytes()
    response = _admin_request(layout, "POST", PARTICIPATION_PATH,
                              files={"config-block": (layout.genesis_block.name, block, "application/octet-stream")})
    if response.status_code != 201:
        raise ChannelError(f"orderer {layout.orderer.name} refused to join {layout.settings.channel} "
                           f"({response.status_code}): {response.text.strip()}")
    return True


def peer_channels(cli: PeerCli) -> list[str]:
    """Channels the org's peer has joined (``peer channel list``)."""
    output = cli.run("channel", "list")
    marker = "Channels peers has joined:"
    names = output.split(marker, 1)[1].split() if marker in output else []
    return [n for n in names if not n.startswith("[")]


def join_peer(cli: PeerCli, layout: DevnetLayout) -> bool:
    """Join the org's peer to the channel. Returns False if it had joined already."""
    if layout.settings.channel in peer_channels(cli):
        return False
    cli.run("channel", "join", "-b", str(layout.genesis_block))
    return True


def peer_chain_info(cli: PeerCli, channel: str) -> dict[str, Any]:
    """``peer channel getinfo``: height, current and previous block hash."""
    output = cli.run("channel", "getinfo", "-c", channel)
    marker = "Blockchain info:"
    if marker not in output:
        raise ChannelError(f"unexpected `peer channel getinfo` output: {output.strip()}")
    info, _ = json.JSONDecoder().raw_decode(output.split(marker, 1)[1].strip())
    return dict(info)
