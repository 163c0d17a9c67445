"""What a node's operations endpoint says: ``/healthz`` and the Prometheus ``/metrics`` samples we use."""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass

import httpx

from gxlib.devnet.layout import Node

LEDGER_HEIGHT_METRIC = "ledger_blockchain_height"
GOSSIP_PEERS_KNOWN_METRIC = "gossip_membership_total_peers_known"


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str | None = None


def check_health(node: Node, timeout_s: float = 2.0) -> Health:
    """GET /healthz: 200 means healthy; anything else carries the reason."""
    try:
        response = httpx.get(f"{node.operations_url}/healthz", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Health(False, f"operations endpoint {node.operations_url} unreachable: {exc.__class__.__name__}")
    if response.status_code == 200:
        return Health(True)
    return Health(False, f"/healthz answered {response.status_code}: {response.text.strip()[:300]}")


def tls_handshake_succeeds(host: str, port: int, ca_file: str, timeout_s: float = 2.0) -> bool:
    """Whether the node completes a TLS handshake on host:port. A Go gRPC server handshakes only once it serves,
    so this is stronger than a TCP connect (the kernel accepts into the backlog before that)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False  # the certificate is verified; the name is not what we are probing
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ssl.SSLError):
        return False


def fetch_metrics(node: Node, timeout_s: float = 2.0) -> str | None:
    try:
        response = httpx.get(f"{node.operations_url}/metrics", timeout=timeout_s)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def metric_value(metrics_text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of the sample ``name{labels...}`` in Prometheus text format (labels matched as a subset)."""
    for line in metrics_text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(rf"{re.escape(name)}(?:\{{(.*)\}})?\s+(\S+)", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return None


def ledger_height(node: Node, channel: str) -> int | None:
    """The node's block height on ``channel`` from its metrics, None if unknown."""
    text = fetch_metrics(node)
    if text is None:
        return None
    value = metric_value(text, LEDGER_HEIGHT_METRIC, {"channel": channel})
    return int(value) if value is not None else None


def gossip_peers_known(node: Node, channel: str) -> int | None:
    """How many other peers of the channel this peer knows through gossip."""
    text = fetch_metrics(node)
    if text is None:
        return None
    value = metric_value(text, GOSSIP_PEERS_KNOWN_METRIC, {"channel": channel})
    return int(value) if value is not None else None
