"""Posting a command to a running backend's API and waiting for what follows: its final status, and the read
model catching up with the ledger. Shared by the integration tests that drive a real API."""

from __future__ import annotations

import time
from typing import Any

import httpx

FINAL_STATUSES = ("COMMITTED", "FAILED", "DLQ")


def post_command(api: httpx.Client, kind: str, payload: dict[str, Any], key: str) -> str:
    """POST the command; asserts 202 and returns its command ID."""
    response = api.post("/api/v1/commands", json={"type": kind, "payload": payload, "idempotencyKey": key})
    assert response.status_code == 202, response.text
    return str(response.json()["commandId"])


def wait_final(api: httpx.Client, command_id: str, timeout_s: float = 90) -> dict[str, Any]:
    """The command once it is COMMITTED, FAILED or DLQ (AssertionError naming its status after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    command: dict[str, Any] = {}
    while time.monotonic() < deadline:
        command = api.get(f"/api/v1/commands/{command_id}").json()
        if command["status"] in FINAL_STATUSES:
            return command
        time.sleep(0.2)
    raise AssertionError(f"command {command_id} still {command.get('status')} after {timeout_s}s")


def wait_projected_balance(api: httpx.Client, account: str, balance: int, timeout_s: float = 30) -> None:
    """Until the read model shows ``balance`` for ``account`` (the ledger's figure)."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        response = api.get(f"/api/v1/accounts/{account}")
        seen = response.json().get("balance") if response.status_code == 200 else None
        if seen == balance:
            return
        time.sleep(0.2)
    raise AssertionError(f"read model of {account} shows {seen}, the ledger has {balance}")
