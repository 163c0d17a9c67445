"""What ``gx k8s status`` reports: processes, nodes, system pods, cached binaries and images, parsed from pid
files, ``kubectl get … -o json`` and the caches."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ProcessState(BaseModel):
    name: str
    pid: int
    running: bool


class NodeState(BaseModel):
    name: str
    ready: bool
    internal_ip: str | None = None
    kubelet_version: str | None = None
    container_runtime: str | None = None


class PodState(BaseModel):
    namespace: str
    name: str
    phase: str
    ready: bool
    restarts: int = 0


class ClusterStatus(BaseModel):
    """The whole picture; ``running`` when every recorded process runs and the API server answers."""

    state_dir: str
    server: str | None = None
    kubeconfig: str | None = None
    processes: list[ProcessState] = Field(default_factory=list)
    api_answers: bool = False
    nodes: list[NodeState] = Field(default_factory=list)
    system_pods: list[PodState] = Field(default_factory=list)
    binaries: dict[str, str] = Field(default_factory=dict)
    images: list[str] = Field(default_factory=list)

    @property
    def running(self) -> bool:
        return bool(self.processes) and all(p.running for p in self.processes) and self.api_answers

    @property
    def stopped_processes(self) -> list[str]:
        return [p.name for p in self.processes if not p.running]


def _condition(conditions: list[dict[str, Any]], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def parse_nodes(node_list: dict[str, Any]) -> list[NodeState]:
    """Nodes from ``kubectl get nodes -o json``."""
    nodes = []
    for item in node_list.get("items", []):
        status = item.get("status", {})
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses", [])}
        info = status.get("nodeInfo", {})
        nodes.append(NodeState(name=item["metadata"]["name"], ready=_condition(status.get("conditions", []), "Ready"),
                               internal_ip=addresses.get("InternalIP"), kubelet_version=info.get("kubeletVersion"),
                               container_runtime=info.get("containerRuntimeVersion")))
    return nodes


def parse_pods(pod_list: dict[str, Any]) -> list[PodState]:
    """Pods from ``kubectl get pods -o json``: phase, Ready condition, restarts summed over containers."""
    pods = []
    for item in pod_list.get("items", []):
        status = item.get("status", {})
        restarts = sum(int(c.get("restartCount", 0)) for c in status.get("containerStatuses", []) or [])
        pods.append(PodState(namespace=item["metadata"].get("namespace", ""), name=item["metadata"]["name"],
                             phase=status.get("phase", "Unknown"),
                             ready=_condition(status.get("conditions", []) or [], "Ready"), restarts=restarts))
    return pods
