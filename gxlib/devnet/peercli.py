"""Run Fabric's own ``peer`` CLI as an org admin: the environment it needs and a typed wrapper."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass

from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.layout import DevnetLayout
from gxlib.errors import GxError


class PeerCliError(GxError):
    """The ``peer`` CLI failed; carries the peer, the command and what the CLI printed."""

    def __init__(self, peer: str, args: list[str], output: str) -> None:
        super().__init__(f"`peer {' '.join(args)}` against {peer} failed:\n{output.strip()}")
        self.peer = peer
        self.command = args  # not `args`: that is the exception's own (message,) tuple
        self.output = output


@dataclass(frozen=True)
class PeerCli:
    install: FabricInstall
    layout: DevnetLayout
    org_key: str

    def environment(self) -> dict[str, str]:
        """Variables after which ``peer`` acts as this org's admin against this org's peer."""
        peer = self.layout.peer_of(self.org_key)
        admin = self.layout.admin(self.org_key)
        orderer = self.layout.orderer
        return {
            "PATH": f"{self.install.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FABRIC_CFG_PATH": str(peer.dir),
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_LOCALMSPID": admin.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(admin.msp_dir),
            "CORE_PEER_ADDRESS": peer.endpoint,
            "CORE_PEER_TLS_ROOTCERT_FILE": str(peer.identity.tls_ca_file),
            # Convenience for `peer ... -o $ORDERER_ADDRESS --tls --cafile $ORDERER_CA`.
            "ORDERER_ADDRESS": orderer.endpoint,
            "ORDERER_CA": str(orderer.org.tls_ca_cert_file),
            "CHANNEL_NAME": self.layout.settings.channel,
        }

    def export_lines(self) -> str:
        env = self.environment()
        env["PATH"] = f"{self.install.bin_dir}{os.pathsep}$PATH"
        lines = []
        for key, value in env.items():
            quoted = f'"{value}"' if key == "PATH" else shlex.quote(value)
            lines.append(f"export {key}={quoted}")
        return "\n".join(lines)

    def run(self, *args: str, timeout_s: float = 60.0) -> str:
        """Run ``peer ARGS`` and return its combined output, or raise PeerCliError."""
        env = {**os.environ, **self.environment()}
        cmd = [str(self.install.binary("peer")), *args]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PeerCliError(self.layout.peer_of(self.org_key).name, list(args),
                               f"no answer within {timeout_s:.0f}s") from exc
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise PeerCliError(self.layout.peer_of(self.org_key).name, list(args), output)
        return output
