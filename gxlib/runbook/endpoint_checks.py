"""What a dry run checks before it reports a plan: that every endpoint the run would use answers (issue 13).

A dry run changes nothing, but it is the operator's rehearsal: a plan that a real run cannot carry out because
Prometheus, the API, a peer or the Kubernetes API server does not answer must not pass. Each runbook lists the
endpoints it would use — from its parameters, or from the state it points at (a devnet that was created, a
monitoring stack that was started, the kubeconfig) — and ``check_endpoints`` records one check per endpoint,
named with what it is and where, failing (also in a dry run) with what was wrong::

    endpoints = [http_endpoint("Prometheus", "http://127.0.0.1:9090", "/-/ready"), *fabric_endpoints(document)]
    if not check_endpoints(section, endpoints):
        return   # the run has stopped: a failed check names each endpoint that did not answer

When the state that would name an endpoint does not exist at all (no devnet was ever created here), there is no
address to check: the runbook's own "devnet up" / "backend reachable" check says so, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gxlib.config import DevnetSettings
from gxlib.devnet.layout import DevnetLayout
from gxlib.devnet.network import Devnet
from gxlib.monitoring.stack import StackLayout
from gxlib.platform.probes import Endpoint, fabric_endpoints, tcp_probe

if TYPE_CHECKING:
    from gxlib.runbook.section import RunbookSection

def network_file_endpoints(path: Path) -> list[Endpoint]:
    """The orderer and peers named by a Fabric network file (already checked to be a JSON object)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # the parameter's own validation reports an unreadable file
    return fabric_endpoints(document) if isinstance(document, dict) else []


def devnet_endpoints(state_dir: Path | None) -> list[Endpoint]:
    """The orderer and peers of the local devnet in ``state_dir`` (default: the configured one) — none when no
    devnet was created there (then there is nothing to probe; the runbook says the devnet is missing)."""
    requested = DevnetSettings(state_dir=state_dir) if state_dir else DevnetSettings()
    if not DevnetLayout(requested).settings_file.is_file():
        return []
    layout = Devnet(requested).layout  # the settings in force: the port offset the network was created with
    return [Endpoint(f"Fabric orderer {layout.orderer.name}", layout.orderer.endpoint,
                     tcp_probe(layout.orderer.endpoint)),
            *(Endpoint(f"Fabric peer {peer.name}", peer.endpoint, tcp_probe(peer.endpoint)) for peer in layout.peers)]


def monitoring_stack_exists(state_dir: Path) -> bool:
    """Whether a local monitoring stack was set up in ``state_dir`` (`gx monitoring up` writes its config)."""
    return StackLayout(state_dir).prometheus_config.is_file()


def check_endpoints(section: RunbookSection[Any], endpoints: Iterable[Endpoint]) -> bool:
    """Ask each endpoint (each once, in order) and record whether it answered; any that does not fails its check
    (in a dry run too) and stops the run. True when every endpoint answered."""
    seen: set[tuple[str, str]] = set()
    failed: list[str] = []
    for endpoint in endpoints:
        if (endpoint.what, endpoint.address) in seen:
            continue
        seen.add((endpoint.what, endpoint.address))
        reason = endpoint.probe()
        if reason is None:
            section.rb.checks.record(endpoint.check_name, True, measured="answers", expected="answers")
        else:
            section.rb.checks.record(endpoint.check_name, False, measured="no answer", expected="answers",
                                     detail=reason)
            failed.append(f"{endpoint.what} at {endpoint.address} does not answer: {reason}")
    if failed:
        section.stopped = "; ".join(failed)
        return False
    return True
