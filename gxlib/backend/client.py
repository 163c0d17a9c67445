"""A typed client of the backend's HTTP API (SPEC §3.4): what runbooks, tests and scripts use to submit commands
and read the read models, instead of hand-built requests.

    with BackendClient("http://127.0.0.1:8000", token) as api:
        accepted = api.submit("CREATE_USER", {"userId": "u1", "countryCode": "US"}, "create-u1")
        command = api.command(accepted.commandId)      # status, fabricTxId, blockNumber, timestamps
        api.user("u1"), api.account("u1"), api.pools(), api.system_status()

Every answer is parsed into the API's own response models (``gxlib.backend.api.schemas``). A refused request
raises :class:`BackendApiError` with the HTTP status and the problem+json ``detail``; a backend that does not
answer raises :class:`BackendUnreachable`. The bearer token is never part of an error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from gxlib.backend.api.schemas import (
    AccountView,
    CommandAccepted,
    CommandView,
    PoolView,
    SystemStatusView,
    UserView,
)
from gxlib.backend.commands import CommandType
from gxlib.errors import GxError

API = "/api/v1"
FINAL_STATUSES = frozenset({"COMMITTED", "FAILED", "DLQ"})

M = TypeVar("M", bound=BaseModel)


class BackendApiError(GxError):
    """The API refused a request: ``status`` is the HTTP status, ``detail`` the problem+json detail."""

    def __init__(self, message: str, *, url: str, status: int | None = None, detail: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.url = url
        self.status = status
        self.detail = detail


class BackendUnreachable(BackendApiError):
    """Nothing answered at the API's URL (not running, wrong port)."""


class BackendClient:
    """The backend API at ``base_url``, called with the bearer ``token`` (admin for admin commands)."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
                 params: Mapping[str, str] | None = None, missing_ok: bool = False) -> httpx.Response | None:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            raise BackendUnreachable(f"the backend API at {self.base_url} does not answer ({method} {path}): "
                                     f"{exc.__class__.__name__}: {exc}", url=self.base_url,
                                     hint="is it running? `gx backend status`, or pass api_url") from exc
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            detail = _problem_detail(response)
            hint = "check the API token (api_token / $GX_API_TOKEN)" if response.status_code in (401, 403) else None
            raise BackendApiError(f"the backend API refused {method} {path}: HTTP {response.status_code}: {detail}",
                                  url=self.base_url, status=response.status_code, detail=detail, hint=hint)
        return response

    def _get(self, path: str, model: type[M], *, missing_ok: bool = False) -> M | None:
        response = self._request("GET", path, missing_ok=missing_ok)
        return None if response is None else model.model_validate(response.json())

    def _get_required(self, path: str, model: type[M]) -> M:
        found = self._get(path, model)
        assert found is not None  # missing_ok is false: a 404 raised
        return found

    # --- operations -------------------------------------------------------------------------------------------
    def healthy(self) -> tuple[bool, str]:
        """Whether ``/healthz`` answers 200, and what was seen (never raises)."""
        try:
            response = self._http.get("/healthz")
        except httpx.TransportError as exc:
            return False, f"{self.base_url}/healthz unreachable: {exc.__class__.__name__}"
        return response.status_code == 200, f"{self.base_url}/healthz: HTTP {response.status_code}"

    # --- commands ---------------------------------------------------------------------------------------------
    def submit(self, command_type: CommandType | str, payload: Mapping[str, Any],
               idempotency_key: str) -> CommandAccepted:
        """POST a command; a known ``idempotency_key`` returns the original command (``duplicate`` true)."""
        body = {"type": CommandType(command_type).value, "payload": dict(payload), "idempotencyKey": idempotency_key}
        response = self._request("POST", f"{API}/commands", json=body)
        assert response is not None
        return CommandAccepted.model_validate(response.json())

    def command(self, command_id: str) -> CommandView:
        """The command's state in the outbox: status, attempts, Fabric tx ID, block, error, timestamps."""
        return self._get_required(f"{API}/commands/{command_id}", CommandView)

    def command_by_key(self, idempotency_key: str) -> CommandView | None:
        """This token's command with ``idempotency_key`` (``None``: it was never submitted)."""
        response = self._request("GET", f"{API}/commands", params={"idempotencyKey": idempotency_key})
        assert response is not None
        found = TypeAdapter(list[CommandView]).validate_python(response.json())
        return found[0] if found else None

    # --- read models ------------------------------------------------------------------------------------------
    def user(self, user_id: str) -> UserView | None:
        """The ``UserProfile`` row, or ``None`` when the read model has no such user (yet)."""
        return self._get(f"{API}/users/{user_id}", UserView, missing_ok=True)

    def account(self, account_id: str) -> AccountView | None:
        """The account's projected balance, or ``None`` when the read model has no such account (yet)."""
        return self._get(f"{API}/accounts/{account_id}", AccountView, missing_ok=True)

    def pools(self) -> list[PoolView]:
        response = self._request("GET", f"{API}/pools")
        assert response is not None
        return TypeAdapter(list[PoolView]).validate_python(response.json())

    def system_status(self) -> SystemStatusView:
        """Bootstrapped, user count, countries, pools, projector checkpoint and outbox counts."""
        return self._get_required(f"{API}/system/status", SystemStatusView)


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:500]
    return str(body)[:500]
