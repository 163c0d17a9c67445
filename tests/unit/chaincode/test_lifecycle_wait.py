"""Waiting until a chaincode answers on every org's peer: a peer that is still dialling its chaincode server (a
roll just replaced the pods behind a Service, kube-proxy has not caught up) times the first call out; that is a
wait, not a failed deploy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from gxlib.chaincode.lifecycle import ChaincodeLifecycle, DeployError, FabricNetwork
from gxlib.config import ChaincodeSettings
from gxlib.fabric.errors import DeadlineExceededError, UnavailableError
from gxlib.progress import Progress


@dataclass(frozen=True)
class Server:
    name: str
    org_key: str
    msp_id: str
    address: str


class ScriptedLifecycle(ChaincodeLifecycle[Server]):
    """Each org's metadata call fails as scripted, then answers."""

    def __init__(self, failures: dict[str, list[Exception]], startup_timeout_s: float = 30.0) -> None:
        servers = [Server(f"cc-{org}", org, f"{org.title()}MSP", f"10.96.0.{i}:9999")
                   for i, org in enumerate(failures, start=1)]
        super().__init__(FabricNetwork("ch", lambda: {}), servers,
                         ChaincodeSettings(startup_timeout_s=startup_timeout_s), Progress(quiet=True))
        self.failures = failures
        self.calls: list[str] = []

    async def _evaluate_metadata(self, org_key: str) -> dict[str, Any]:
        self.calls.append(org_key)
        if self.failures[org_key]:
            raise self.failures[org_key].pop(0)
        return {"contracts": {}}


def _deadline() -> DeadlineExceededError:
    return DeadlineExceededError("evaluate failed: DEADLINE_EXCEEDED", code=grpc.StatusCode.DEADLINE_EXCEEDED)


def test_a_peer_whose_first_call_times_out_while_it_dials_the_new_pods_is_waited_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gxlib.chaincode.lifecycle.asyncio.sleep", _no_sleep)
    unavailable = UnavailableError("evaluate failed: UNAVAILABLE", code=grpc.StatusCode.UNAVAILABLE)
    lifecycle = ScriptedLifecycle({"org1": [_deadline()], "org2": [unavailable, _deadline()]})
    lifecycle.wait_answering()
    assert lifecycle.calls == ["org1", "org1", "org2", "org2", "org2"]


def test_a_peer_that_never_answers_fails_the_wait_naming_the_org(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gxlib.chaincode.lifecycle.asyncio.sleep", _no_sleep)
    class NeverAnswers(ScriptedLifecycle):
        async def _evaluate_metadata(self, org_key: str) -> dict[str, Any]:
            raise _deadline()

    with pytest.raises(DeployError, match="does not answer on org1's peer: evaluate failed: DEADLINE_EXCEEDED"):
        NeverAnswers({"org1": []}, startup_timeout_s=0.01).wait_answering()


async def _no_sleep(_: float) -> None:
    return None
