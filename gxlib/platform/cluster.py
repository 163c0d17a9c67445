"""The one way gxlib reaches a Kubernetes API server: the kubeconfig (or the pod's service account) → an API client
and a description of which cluster that is, or a :class:`ClusterUnavailable` that names the parameter to fix.

    cluster = connect_cluster(KubernetesPlatformSettings(kubeconfig=Path("~/.kube/dev")), parameter="kubeconfig")
    print(cluster)   # https://10.0.0.1:6443 (context dev, kubeconfig ~/.kube/dev)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from gxlib.platform.errors import ClusterUnavailable
from gxlib.platform.settings import KubernetesPlatformSettings

IN_CLUSTER = "in-cluster service account"
# What a cluster that does not answer raises from the kubernetes client (refused, timed out, TLS, DNS).
CLUSTER_DOWN: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class ClusterConnection:
    """An API client of the cluster the operator chose, and the words every message about it uses."""

    api: k8s_client.ApiClient
    server: str
    context: str
    kubeconfig: str

    def __str__(self) -> str:
        if self.context == IN_CLUSTER:
            return f"{self.server} ({IN_CLUSTER})"
        return f"{self.server} (context {self.context}, kubeconfig {self.kubeconfig})"

    def close(self) -> None:
        self.api.close()

    def check_answers(self, timeout_s: float) -> None:
        """ClusterUnavailable unless the API server answers its version endpoint (with these credentials)."""
        try:
            k8s_client.VersionApi(self.api).get_code(_request_timeout=timeout_s)
        except ApiException as exc:
            raise ClusterUnavailable("kube_context", f"the Kubernetes API server {self} refused the request: HTTP "
                                     f"{exc.status}: {exc.reason} — check the context's credentials") from exc
        except CLUSTER_DOWN as exc:
            raise ClusterUnavailable("kube_context", f"the Kubernetes API server {self} does not answer "
                                     f"({type(exc).__name__}: {exc}) — check kube_context / kubeconfig and that the "
                                     "cluster can be reached from here") from exc


def connect_cluster(settings: KubernetesPlatformSettings) -> ClusterConnection:
    """The cluster of the kubeconfig and context in ``settings`` (default ``$KUBECONFIG``, else ``~/.kube/config``),
    else of the pod's service account; ClusterUnavailable (naming ``kubeconfig``) when there is neither."""
    # What load_kube_config() would read by default, looked up now (the environment may have changed since the
    # kubernetes package was imported).
    kubeconfig = str(settings.kubeconfig) if settings.kubeconfig else os.environ.get("KUBECONFIG", "~/.kube/config")
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(config_file=kubeconfig, context=settings.context,
                                    client_configuration=configuration)
        _, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
        context = settings.context or str(active["name"])
    except (k8s_config.ConfigException, OSError, ValueError) as kubeconfig_error:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            parameter = "kube_context" if settings.context and os.path.exists(os.path.expanduser(kubeconfig)) \
                else "kubeconfig"
            raise ClusterUnavailable(
                parameter, f"no Kubernetes cluster to act on: the kubeconfig {kubeconfig} gives none "
                f"({kubeconfig_error}), and this is not a pod with a service account — pass kubeconfig (and "
                "kube_context), or set GX_K8S_PLATFORM_KUBECONFIG / $KUBECONFIG") from None
        context = IN_CLUSTER
    return ClusterConnection(k8s_client.ApiClient(configuration), str(configuration.host), context, kubeconfig)
