"""A small model of Kubernetes NetworkPolicy semantics, to check the rendered policies statically.

The bridge CNI of the local cluster does not enforce NetworkPolicy (SPEC §10), so the tests ask this model
instead: may a connection from one endpoint to another's port pass both the source's egress and the
destination's ingress policies? An endpoint is a pod (namespace + labels) or something outside the pod network
(a managed database, the API server): ``Endpoint.external()``. Named ports and ipBlock CIDRs are not modelled:
an ipBlock peer matches every external endpoint, and a policy with a named port fails the check loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Policy = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    namespace: str | None
    labels: dict[str, str] = field(default_factory=dict)
    name: str = ""

    @classmethod
    def external(cls, name: str = "outside the pod network") -> Endpoint:
        return cls(None, {}, name)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None

    def __str__(self) -> str:
        return self.name or f"{self.namespace}/{self.labels}"


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels + matchExpressions) selects ``labels``; ``{}`` selects all."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        matched = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not matched:
            return False
    return True


def _namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def _peer_matches(peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        return not other.is_pod
    if not other.is_pod:
        return False
    assert other.namespace is not None
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        if other.namespace != policy_namespace:
            return False
    elif not selects(namespace_selector, _namespace_labels(other.namespace)):
        return False
    pod_selector = peer.get("podSelector")
    return pod_selector is None or selects(pod_selector, other.labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        assert isinstance(wanted, int), f"the model does not resolve named ports ({wanted!r})"
        if wanted <= port <= entry.get("endPort", wanted):
            return True
    return False


def _policy_types(policy: Policy) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


def _allowed_one_way(policies: list[Policy], pod: Endpoint, direction: str, other: Endpoint, port: int,
                     protocol: str) -> bool:
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies if p["metadata"].get("namespace") == pod.namespace
                 and selects(p["spec"].get("podSelector", {}), pod.labels) and direction in _policy_types(p)]
    if not selecting:
        return True  # no policy isolates the pod in this direction
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if peers and not any(_peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers):
                continue
            if _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def allowed(policies: list[Policy], source: Endpoint, destination: Endpoint, port: int,
            protocol: str = "TCP") -> bool:
    """Whether ``source`` may open a connection to ``destination``'s ``port`` under ``policies``."""
    egress = not source.is_pod or _allowed_one_way(policies, source, "Egress", destination, port, protocol)
    ingress = not destination.is_pod or _allowed_one_way(policies, destination, "Ingress", source, port, protocol)
    return egress and ingress
