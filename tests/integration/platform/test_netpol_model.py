"""The NetworkPolicy model the security tests rely on follows Kubernetes' semantics (isolation is per direction,
selected pods only; peers are ANDed within an entry and ORed across entries; a rule without ports allows all)."""

from __future__ import annotations

from typing import Any

from tests.integration.platform.netpol import Endpoint, allowed

WEB = Endpoint("shop", {"app": "web"}, "web")
DB = Endpoint("shop", {"app": "db"}, "db")
OTHER_NS_WEB = Endpoint("lab", {"app": "web"}, "lab/web")


def _policy(namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_without_policies_everything_is_allowed() -> None:
    assert allowed([], WEB, DB, 5432)


def test_a_default_deny_isolates_only_its_namespace() -> None:
    deny = [_policy("shop", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})]
    assert not allowed(deny, WEB, DB, 5432)
    assert not allowed(deny, OTHER_NS_WEB, DB, 5432)
    assert allowed(deny, OTHER_NS_WEB, Endpoint("lab", {"app": "db"}), 5432)


def test_a_pod_selector_peer_without_namespace_selector_means_the_policys_namespace() -> None:
    policy = [_policy("shop", {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                            "ports": [{"port": 5432}]}]})]
    assert allowed(policy, WEB, DB, 5432)
    assert not allowed(policy, WEB, DB, 5433)
    assert not allowed(policy, OTHER_NS_WEB, DB, 5432)


def test_namespace_and_pod_selector_in_one_entry_must_both_match() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "lab"}},
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}}
    policy = [_policy("shop", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [peer]}]})]
    assert allowed(policy, OTHER_NS_WEB, DB, 1)
    assert not allowed(policy, Endpoint("lab", {"app": "batch"}), DB, 1)
    assert not allowed(policy, WEB, DB, 1)


def test_an_egress_rule_with_only_ports_reaches_anywhere_on_those_ports() -> None:
    policy = [_policy("shop", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 443}]}]})]
    assert allowed(policy, WEB, Endpoint.external(), 443)
    assert not allowed(policy, WEB, Endpoint.external(), 80)
    assert not allowed(policy, WEB, DB, 5432)
