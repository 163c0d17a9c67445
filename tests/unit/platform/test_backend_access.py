"""What the platform takes from the cluster for runbooks 03–05 when the operator gives nothing: the API token of
the role needed (least privileged first) from backend-api-tokens, and the Fabric network of backend-fabric-client
written for the run — with the cluster's API replaced by a fake that holds Secrets."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from gxlib.backend.settings import ApiRole
from gxlib.config import Environment
from gxlib.errors import Unavailable
from gxlib.platform.backend_access import (
    BackendSecretError,
    ClusterBackend,
    choose_api_token,
    parse_api_tokens,
    write_fabric_client,
)
from gxlib.platform.settings import KubernetesPlatformSettings

TOKENS = {"tok-admin-1": "admin", "tok-operator-1": "operator", "tok-reader-1": "reader"}


class FakeSecrets:
    """``read_namespaced_secret`` of CoreV1Api from ``secrets`` (name → key → bytes); missing: 404."""

    def __init__(self, secrets: dict[str, dict[str, bytes]], status: int = 404) -> None:
        self.secrets = secrets
        self.status = status
        self.asked: list[tuple[str, str]] = []

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> Any:
        self.asked.append((namespace, name))
        if name not in self.secrets:
            raise ApiException(status=self.status, reason="Not Found" if self.status == 404 else "Forbidden")
        return SimpleNamespace(data={key: base64.b64encode(value).decode()
                                     for key, value in self.secrets[name].items()})


class FakeConnection:
    closed = False
    api: Any = None

    def close(self) -> None:
        self.closed = True

    def __str__(self) -> str:
        return "https://10.0.0.1:6443 (context test)"


def _backend(secrets: dict[str, dict[str, bytes]], status: int = 404) -> ClusterBackend:
    backend = ClusterBackend.__new__(ClusterBackend)
    backend.cluster = FakeConnection()  # type: ignore[assignment]
    backend.env = Environment.DEVNET
    backend.settings = KubernetesPlatformSettings()
    backend.namespace = "backend-devnet"
    backend.core = FakeSecrets(secrets, status)  # type: ignore[assignment]
    backend.forwards = []
    backend._directory = None
    return backend


def _tokens_secret(tokens: dict[str, str]) -> dict[str, dict[str, bytes]]:
    return {"backend-api-tokens": {"GX_BACKEND_API_TOKENS": json.dumps(tokens).encode()}}


# --- the token ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("needed", "chosen"), [(ApiRole.READER, "tok-reader-1"),
                                                (ApiRole.OPERATOR, "tok-operator-1"),
                                                (ApiRole.ADMIN, "tok-admin-1")])
def test_the_least_privileged_token_that_has_the_role_needed_is_chosen(needed: ApiRole, chosen: str) -> None:
    tokens = {token: ApiRole(role) for token, role in TOKENS.items()}
    assert choose_api_token(tokens, needed) == (chosen, ApiRole(TOKENS[chosen]))


def test_without_a_token_of_the_role_there_is_no_choice() -> None:
    assert choose_api_token({"r": ApiRole.READER}, ApiRole.OPERATOR) is None


def test_the_token_comes_from_the_secret_and_its_source_names_the_secret_not_the_token() -> None:
    backend = _backend(_tokens_secret(TOKENS))
    found = backend.api_token(ApiRole.ADMIN)
    assert found.value == "tok-admin-1"
    assert found.source == ("Secret backend-devnet/backend-api-tokens key GX_BACKEND_API_TOKENS, a token of role "
                            "admin")
    assert "tok-" not in repr(found)


@pytest.mark.parametrize(("secrets", "said"), [
    ({}, "Secret backend-devnet/backend-api-tokens does not exist"),
    ({"backend-api-tokens": {"OTHER": b"{}"}}, "has no key GX_BACKEND_API_TOKENS"),
    (_tokens_secret({"tok-reader-1": "reader"}), "has no token with role admin or above (its roles: reader)"),
    ({"backend-api-tokens": {"GX_BACKEND_API_TOKENS": b"tok-admin-1 admin"}},
     "key GX_BACKEND_API_TOKENS is not JSON"),
])
def test_no_usable_token_stops_the_run_naming_api_token_and_never_showing_a_token(
        secrets: dict[str, dict[str, bytes]], said: str) -> None:
    with pytest.raises(Unavailable) as refused:
        _backend(secrets).api_token(ApiRole.ADMIN)
    assert refused.value.parameter == "api_token"
    assert said in refused.value.reason and "GX_API_TOKEN" in refused.value.reason
    assert "tok-" not in refused.value.reason


def test_a_secret_the_user_may_not_read_is_unavailable_naming_the_secret_and_rbac() -> None:
    with pytest.raises(Unavailable) as refused:
        _backend({}, status=403).api_token(ApiRole.ADMIN)
    assert "reading Secret backend-devnet/backend-api-tokens failed (HTTP 403)" in refused.value.reason
    assert "RBAC" in refused.value.reason and refused.value.parameter == "kube_context"


def test_an_unknown_role_in_the_tokens_document_is_refused_naming_it() -> None:
    with pytest.raises(BackendSecretError, match="unknown role\\(s\\) root"):
        parse_api_tokens(b'{"t": "root"}', "backend-devnet", "backend-api-tokens", "GX_BACKEND_API_TOKENS")


# --- the Fabric network -------------------------------------------------------------------------------------
NETWORK = {"channel": "gxchannel-devnet",
           "peers": [{"name": "peer0.org1", "tls_ca": "/run/secrets/gx-fabric/org1-tlsca.pem"}],
           "identities": [{"name": "service", "cert": "/run/secrets/gx-fabric/service-cert.pem",
                           "key": "service-key.pem", "label": "service-cert.pem is a name, not a path"}]}
FILES = {"org1-tlsca.pem": b"CA", "service-cert.pem": b"CERT", "service-key.pem": b"KEY"}


def test_the_fabric_client_secret_is_written_privately_with_the_documents_paths_pointing_at_its_files(
        tmp_path: Path) -> None:
    directory = tmp_path / "client"
    network = write_fabric_client({"network.json": json.dumps(NETWORK).encode(), **FILES}, directory,
                                  "network.json")
    document = json.loads(network.read_text())
    assert document["peers"][0]["tls_ca"] == str(directory / "org1-tlsca.pem")
    assert document["identities"][0]["cert"] == str(directory / "service-cert.pem")
    assert document["identities"][0]["key"] == str(directory / "service-key.pem")
    assert document["identities"][0]["label"] == "service-cert.pem is a name, not a path"
    assert (directory / "service-key.pem").read_bytes() == b"KEY"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {0o600}


def test_the_network_from_the_cluster_is_removed_when_the_backend_is_closed() -> None:
    backend = _backend({"backend-fabric-client": {"network.json": json.dumps(NETWORK).encode(), **FILES}})
    found = backend.fabric_network_file()
    assert found is not None and found.value.is_file()
    assert found.source == "Secret backend-devnet/backend-fabric-client"
    backend.close()
    assert not found.value.exists()
    assert backend.cluster.closed  # type: ignore[attr-defined]


def test_a_cluster_without_the_fabric_client_secret_gives_no_network() -> None:
    assert _backend({}).fabric_network_file() is None


def test_a_fabric_client_secret_without_its_document_names_the_parameter_to_set_instead() -> None:
    with pytest.raises(Unavailable) as refused:
        _backend({"backend-fabric-client": FILES}).fabric_network_file()
    assert refused.value.parameter == "fabric_network_file"
    assert "has no key network.json (its keys: org1-tlsca.pem, service-cert.pem, service-key.pem)" in \
        refused.value.reason
