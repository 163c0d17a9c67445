"""The cluster add-ons: CoreDNS as the cluster DNS (a Deployment and a Service at the kubelet's clusterDNS IP,
its Corefile in a ConfigMap). Names inside the cluster resolve; nothing is forwarded off the node."""

from __future__ import annotations

from typing import Any

from gxlib.k8scluster.settings import K8sClusterSettings

NAMESPACE = "kube-system"
COREDNS = "coredns"
COREFILE = """.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loop
    reload
}
"""


def coredns_objects(settings: K8sClusterSettings, image: str) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole(+Binding), ConfigMap, Deployment and Service of CoreDNS."""
    labels = {"k8s-app": "kube-dns"}
    meta = {"name": COREDNS, "namespace": NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [
             {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": COREDNS, "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta, "labels": labels},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": labels},
             "template": {
                 "metadata": {"labels": labels},
                 "spec": {
                     "serviceAccountName": COREDNS,
                     "dnsPolicy": "Default",
                     "priorityClassName": "system-cluster-critical",
                     "containers": [{
                         "name": COREDNS, "image": image, "imagePullPolicy": "Never",
                         "args": ["-conf", "/etc/coredns/Corefile"],
                         "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                   {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
                         "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                             "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
                         "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10},
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                         "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                                       "limits": {"memory": "128Mi"}},
                         "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                     }],
                     "volumes": [{"name": "config", "configMap": {"name": COREDNS}}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": NAMESPACE, "labels": labels},
         "spec": {"selector": labels, "clusterIP": settings.cluster_dns_ip,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
    ]
