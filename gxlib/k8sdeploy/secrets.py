"""The Secrets the devnet overlay requires and that are never kept in git (k8s/base/backend/settings.yaml,
k8s/overlays/devnet/backend/postgresql.yaml): PostgreSQL's superuser password, the backend's database URL (that
password, the in-cluster Service) and its API tokens. Generated once, in the cluster only (no file anywhere); a
later deploy finds them and keeps them, so the database, initialised with the first password, stays reachable.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

POSTGRES_SECRET = "postgresql-superuser"
POSTGRES_PASSWORD_KEY = "POSTGRES_PASSWORD"
BACKEND_SECRET = "backend-secrets"
DATABASE_URL_KEY = "GX_BACKEND_DATABASE_URL"
API_TOKENS_SECRET = "backend-api-tokens"
API_TOKENS_KEY = "GX_BACKEND_API_TOKENS"
DATABASE_USER = "postgres"
DATABASE_NAME = "gx"
DATABASE_SERVICE = "postgresql"
DATABASE_PORT = 5432
API_TOKEN_ROLE = "admin"


@dataclass(frozen=True)
class BackendSecrets:
    """The values; ``secret_objects`` turns them into the three Secrets of ``namespace``."""

    postgres_password: str
    api_token: str

    @staticmethod
    def generate() -> BackendSecrets:
        return BackendSecrets(postgres_password=secrets.token_urlsafe(24), api_token=secrets.token_urlsafe(32))

    def database_url(self, namespace: str) -> str:
        host = f"{DATABASE_SERVICE}.{namespace}.svc"
        return (f"postgresql+psycopg://{DATABASE_USER}:{self.postgres_password}@{host}:{DATABASE_PORT}/"
                f"{DATABASE_NAME}")

    def secret_objects(self, namespace: str) -> list[dict[str, Any]]:
        tokens = json.dumps({self.api_token: API_TOKEN_ROLE})
        return [
            _secret(POSTGRES_SECRET, namespace, {POSTGRES_PASSWORD_KEY: self.postgres_password}),
            _secret(BACKEND_SECRET, namespace, {DATABASE_URL_KEY: self.database_url(namespace)}),
            _secret(API_TOKENS_SECRET, namespace, {API_TOKENS_KEY: tokens}),
        ]


def _secret(name: str, namespace: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "gx-k8s-deploy"}},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}


def decode(secret: Mapping[str, Any], key: str) -> str | None:
    value = (secret.get("data") or {}).get(key)
    return base64.b64decode(value).decode() if value else None


def existing_secrets(postgres: Mapping[str, Any] | None, tokens: Mapping[str, Any] | None) -> BackendSecrets | None:
    """The values already in the cluster (from the two Secrets as ``kubectl get -o json`` gives them), or None
    when the password is not there yet. A missing token Secret gets a new token."""
    password = decode(postgres, POSTGRES_PASSWORD_KEY) if postgres else None
    if not password:
        return None
    token = None
    if tokens:
        raw = decode(tokens, API_TOKENS_KEY)
        token = next(iter(json.loads(raw)), None) if raw else None
    return BackendSecrets(postgres_password=password, api_token=token or secrets.token_urlsafe(32))
