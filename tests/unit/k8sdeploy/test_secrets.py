"""The Secrets the overlay requires: generated once, read back and kept on the next deploy, and never in a file
of the repository."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from gxlib.k8sdeploy.secrets import (
    API_TOKENS_KEY,
    API_TOKENS_SECRET,
    BACKEND_SECRET,
    DATABASE_URL_KEY,
    POSTGRES_PASSWORD_KEY,
    POSTGRES_SECRET,
    BackendSecrets,
    decode,
    existing_secrets,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def _by_name(values: BackendSecrets) -> dict[str, dict[str, object]]:
    return {s["metadata"]["name"]: s for s in values.secret_objects("backend-devnet")}


def test_the_database_url_names_the_in_cluster_service_with_the_generated_password() -> None:
    values = BackendSecrets.generate()
    objects = _by_name(values)
    assert set(objects) == {POSTGRES_SECRET, BACKEND_SECRET, API_TOKENS_SECRET}
    assert decode(objects[POSTGRES_SECRET], POSTGRES_PASSWORD_KEY) == values.postgres_password
    url = decode(objects[BACKEND_SECRET], DATABASE_URL_KEY)
    assert url == (f"postgresql+psycopg://postgres:{values.postgres_password}@postgresql.backend-devnet.svc:5432/gx")
    tokens = json.loads(decode(objects[API_TOKENS_SECRET], API_TOKENS_KEY) or "{}")
    assert tokens == {values.api_token: "admin"}


def test_two_generations_differ_and_passwords_are_url_safe() -> None:
    first, second = BackendSecrets.generate(), BackendSecrets.generate()
    assert first.postgres_password != second.postgres_password and first.api_token != second.api_token
    assert all(c.isalnum() or c in "-_" for c in first.postgres_password)


def test_a_second_deploy_keeps_the_password_the_database_was_initialised_with() -> None:
    values = BackendSecrets.generate()
    objects = _by_name(values)
    again = existing_secrets(objects[POSTGRES_SECRET], objects[API_TOKENS_SECRET])
    assert again == values


def test_without_the_password_secret_nothing_is_reused() -> None:
    assert existing_secrets(None, None) is None
    assert existing_secrets({"data": {}}, None) is None


def test_a_lost_token_secret_gets_a_new_token_but_keeps_the_password() -> None:
    password = {"data": {POSTGRES_PASSWORD_KEY: base64.b64encode(b"pw").decode()}}
    again = existing_secrets(password, None)
    assert again is not None and again.postgres_password == "pw" and again.api_token


def test_no_file_under_the_repository_holds_a_secret_the_deploy_creates() -> None:
    """The Secrets exist only in the cluster: no manifest in git defines one of them."""
    files = subprocess.run(["git", "ls-files", "k8s"], cwd=REPO_ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in (f for f in files if f.endswith((".yaml", ".yml"))):
        text = (REPO_ROOT / name).read_text(errors="replace")
        assert "kind: Secret" not in text, f"{name} defines a Secret"
        assert "postgresql+psycopg://" not in text, f"{name} holds a database URL"
