"""HTTP to a pod's port through the API server's proxy (``<server>/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy``,
or ``…/services/<service>:<port>/proxy`` for a Service),
as the kubeconfig's user: the API server's URL, the CA it is verified with, the client certificate and the bearer
token are taken from the ``kubernetes`` client's ``Configuration``, so Prometheus in ``prometheus-0`` can be asked
without a port-forward.

The API server passes the pod's answer through; when it cannot reach the pod it answers itself (403, 502, 503 with
its own text), which is what an operator then reads in the error.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

import requests
from kubernetes import client as k8s_client


def pod_proxy_url(server: str, namespace: str, pod: str, port: int) -> str:
    """The base URL under which the API server proxies HTTP to ``pod``'s ``port``."""
    return (f"{server.rstrip('/')}/api/v1/namespaces/{quote(namespace, safe='')}/pods/"
            f"{quote(pod, safe='')}:{port}/proxy")


def service_proxy_url(server: str, namespace: str, service: str, port: int) -> str:
    """The base URL under which the API server proxies HTTP to ``service``'s ``port`` (one of its ready pods): for
    a Deployment, whose pods have no fixed name."""
    return (f"{server.rstrip('/')}/api/v1/namespaces/{quote(namespace, safe='')}/services/"
            f"{quote(service, safe='')}:{port}/proxy")


@dataclass(frozen=True)
class ApiServerAccess:
    """How to speak HTTPS to the API server as the kubeconfig's user."""

    server: str
    verify: bool = True  # false: the kubeconfig says insecure-skip-tls-verify
    ca_file: str | None = None  # None: the system's trust store
    check_hostname: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    # The Authorization header (bearer token). Kept out of repr: a record must never show it.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    proxy: str | None = None

    @classmethod
    def from_configuration(cls, configuration: k8s_client.Configuration) -> ApiServerAccess:
        """What ``configuration`` (as ``load_kube_config`` or ``load_incluster_config`` filled it) authenticates with.

        The token is read through ``auth_settings()``, which runs the client's refresh hook (exec plugins)."""
        auth: dict[str, dict[str, Any]] = cast(dict[str, dict[str, Any]], configuration.auth_settings())
        headers = {str(entry["key"]): str(entry["value"]) for entry in auth.values()
                   if entry.get("in") == "header" and entry.get("value")}
        if not headers and configuration.username and configuration.password:
            headers["authorization"] = str(configuration.get_basic_auth_token())
        return cls(server=str(configuration.host).rstrip("/"), verify=bool(configuration.verify_ssl),
                   ca_file=configuration.ssl_ca_cert or None,
                   check_hostname=configuration.assert_hostname is not False,
                   cert_file=configuration.cert_file or None, key_file=configuration.key_file or None,
                   headers=headers, proxy=configuration.proxy or None)

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the kubeconfig's CA and presents its client certificate."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif not self.check_hostname:
            context.check_hostname = False
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def requests_session(self) -> requests.Session:
        """The access for ``requests``, what the Prometheus and Alertmanager clients of :mod:`gxlib.monitoring` speak;
        like the kubernetes client, only the kubeconfig's proxy applies, not ``$HTTPS_PROXY``.

        ``requests`` cannot skip only the hostname check: with ``check_hostname`` false it verifies the hostname
        all the same (the kubeconfig's ``tls-server-name`` case is not covered)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = (self.ca_file or True) if self.verify else False
        if self.cert_file:
            session.cert = (self.cert_file, self.key_file) if self.key_file else self.cert_file
        session.headers.update(self.headers)
        if self.proxy:
            session.proxies = {"http": self.proxy, "https": self.proxy}
        return session
