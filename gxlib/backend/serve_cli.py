"""``gx serve api|submitter|projector``: run one backend service in the foreground (what `gx backend up` starts,
and what a container runs). SIGTERM drains gracefully; logs are JSON lines on stderr."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from gxlib.backend.settings import BackendSettings


def _fabric_context(settings: BackendSettings) -> tuple[dict[str, Any], str, str]:
    """The Fabric client environment, channel and chaincode name (GX_CHAINCODE_*): from the bundle's network file
    when GX_BACKEND_FABRIC_NETWORK_FILE names one (a pod), else from the local devnet (GX_DEVNET_*)."""
    from gxlib.config import ChaincodeSettings

    if settings.fabric_network_file is not None:
        from gxlib.backend.fabric_client import load_network_file

        environment = load_network_file(settings.fabric_network_file)
        return environment, environment["channel"], ChaincodeSettings().name

    from gxlib.config import DevnetSettings
    from gxlib.devnet.network import Devnet
    from gxlib.progress import Progress

    devnet = Devnet(DevnetSettings(), progress=Progress(quiet=True))
    return devnet.environment(), devnet.settings.channel, ChaincodeSettings().name


@click.group()
def serve() -> None:
    """Run one backend service in the foreground (settings: GX_BACKEND_*; Fabric from GX_BACKEND_FABRIC_NETWORK_FILE,
    else the devnet from GX_DEVNET_*)."""


@serve.command("api")
def serve_api() -> None:
    """The HTTP API (commands, command status, read models, /healthz, /readyz, /metrics)."""
    from gxlib.backend.api import create_app
    from gxlib.backend.api.server import serve
    from gxlib.backend.logs import configure_logging

    settings = BackendSettings()
    configure_logging(settings.service_name, settings.log_level)
    serve(create_app(settings), settings)


@serve.command("submitter")
def serve_submitter_command() -> None:
    """The outbox-submitter: claims commands and writes them to Fabric exactly once."""
    from gxlib.backend.fabric_tx import FabricTxGateway
    from gxlib.backend.logs import configure_logging
    from gxlib.backend.service import serve_submitter

    settings = BackendSettings()
    configure_logging("gx-outbox-submitter", settings.log_level)
    environment, channel, chaincode = _fabric_context(settings)
    asyncio.run(serve_submitter(settings, FabricTxGateway(environment, channel, chaincode)))


@serve.command("projector")
def serve_projector_command() -> None:
    """The projector: applies the chaincode's events to the read models from its checkpoint."""
    from gxlib.backend.fabric_events import FabricEventSource
    from gxlib.backend.logs import configure_logging
    from gxlib.backend.service import serve_projector

    settings = BackendSettings()
    configure_logging("gx-projector", settings.log_level)
    environment, channel, chaincode = _fabric_context(settings)
    asyncio.run(serve_projector(settings, FabricEventSource(environment, channel, chaincode)))
