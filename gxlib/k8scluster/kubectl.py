"""kubectl against the cluster's admin kubeconfig: JSON reads and server-side applies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from gxlib.k8scluster.errors import ClusterError


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, input_text: str | None = None, timeout_s: float = 60.0
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.binary), "--kubeconfig", str(self.kubeconfig), *args], input=input_text,
                              capture_output=True, text=True, check=False, timeout=timeout_s)

    def get_json(self, *args: str) -> dict[str, Any] | None:
        """``kubectl get … -o json``, None when the API server does not answer."""
        try:
            proc = self.run("get", *args, "-o", "json", "--request-timeout", "10s", timeout_s=20)
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode != 0:
            return None
        data = json.loads(proc.stdout)
        return data if isinstance(data, dict) else None

    def apply(self, objects: list[dict[str, Any]], field_manager: str = "gx-k8s-cluster") -> None:
        proc = self.run("apply", "--server-side", "--force-conflicts", "--field-manager", field_manager, "-f", "-",
                        input_text=yaml.safe_dump_all(objects, sort_keys=False))
        if proc.returncode != 0:
            names = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
            raise ClusterError("kubectl", f"applying {names} failed: {proc.stderr.strip()}")
