"""Whether the overlay's workloads run: every Deployment and StatefulSet with its replicas Ready (by their real
probes) and up to date, every Job complete; and, for those that are not, what their pods wait on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

WAITED_KINDS = ("Deployment", "StatefulSet", "Job")


@dataclass(frozen=True)
class WorkloadState:
    kind: str
    namespace: str
    name: str
    desired: int
    ready: int
    done: bool

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "desired": self.desired,
                "ready": self.ready, "done": self.done}


def workload_state(doc: Mapping[str, Any]) -> WorkloadState:
    """The state of one Deployment, StatefulSet or Job as the API server returns it."""
    kind, meta = doc["kind"], doc["metadata"]
    spec, status = doc.get("spec") or {}, doc.get("status") or {}
    current = int(status.get("observedGeneration", 0) or 0) >= int(meta.get("generation", 0) or 0)
    if kind == "Job":
        succeeded = int(status.get("succeeded", 0) or 0)
        wanted = int(spec.get("completions", 1) or 1)
        return WorkloadState(kind, meta["namespace"], meta["name"], wanted, succeeded, succeeded >= wanted)
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    ready = int(status.get("readyReplicas", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    if kind == "StatefulSet":
        up_to_date = status.get("currentRevision") == status.get("updateRevision") or updated >= desired
    else:
        up_to_date = updated >= desired and int(status.get("replicas", 0) or 0) == desired
    done = desired == 0 or (current and up_to_date and ready >= desired)
    return WorkloadState(kind, meta["namespace"], meta["name"], desired, ready, done)


def pod_problems(pods: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """Why each pod is not Ready: its phase, scheduling condition, containers' waiting/termination reasons and the
    last warning event about it (``events``: the namespace's Warning events, e.g. a Secret a volume lacks)."""
    warnings: dict[str, str] = {}
    for event in sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or "")):
        involved = event.get("involvedObject") or {}
        if involved.get("kind") == "Pod":
            warnings[str(involved.get("name"))] = f"{event.get('reason')}: {event.get('message', '')}".strip()
    problems: list[str] = []
    for pod in pods:
        name, status = pod["metadata"]["name"], pod.get("status") or {}
        reasons: list[str] = []
        for condition in status.get("conditions", []):
            if condition.get("type") == "PodScheduled" and condition.get("status") != "True":
                reasons.append(f"unschedulable: {condition.get('message', '')}")
        for container in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
            state = container.get("state") or {}
            waiting, last = state.get("waiting"), (container.get("lastState") or {}).get("terminated")
            if waiting:
                reasons.append(f"{container['name']}: {waiting.get('reason')} {waiting.get('message', '')}".strip())
            if last:
                reasons.append(f"{container['name']} last exited {last.get('exitCode')} ({last.get('reason')})")
            if not container.get("ready") and not waiting and state.get("running"):
                reasons.append(f"{container['name']}: running, readiness probe failing")
        if name in warnings:
            reasons.append(f"last warning {warnings[name]}")
        problems.append(f"pod {name} {status.get('phase', '?')}: {'; '.join(reasons) or 'starting'}")
    return problems
