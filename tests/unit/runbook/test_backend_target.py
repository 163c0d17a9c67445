"""Runbooks 03/04 off local: the backend from the parameters, the submitter read from its /metrics or from
Prometheus, and the checks that have nowhere to read skipped with the reason — all without a network."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import SecretStr

from gxlib.backend.api.schemas import CommandView
from gxlib.backend.commands import CommandType
from gxlib.chaincode.deploy import ChaincodeStatus
from gxlib.chaincode.lifecycle import FabricNetwork
from gxlib.config import Environment
from gxlib.errors import Unavailable
from gxlib.progress import Progress
from gxlib.runbook import prepare, runbook
from gxlib.runbook.bootstrap_system import BootstrapSystem
from gxlib.runbook.checks import CheckStatus
from gxlib.runbook.parameters import BootstrapSystemParameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.steps import StepOutcome
from gxlib.runbook.steps_backend import (
    BackendTarget,
    SubmitterProbe,
    backend_target,
    breaker_state_queries,
    no_submitter_probe,
    prometheus_breaker_state,
    reachable_check,
    remote_backend,
)
from gxlib.runbook.validate_cqrs import ValidateCqrs

NAMESPACE = "backend-devnet"


class FakePrometheus:
    """``instant(expression)`` answers from ``values`` (expression → value; missing: no series)."""

    url = "http://prometheus.test:9090"

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values
        self.asked: list[str] = []

    def instant(self, expression: str) -> pd.DataFrame:
        self.asked.append(expression)
        if expression not in self.values:
            return pd.DataFrame({"series": pd.Series(dtype="object"), "value": pd.Series(dtype="float64")})
        return pd.DataFrame({"series": [expression], "value": [self.values[expression]]})

    def close(self) -> None:
        pass


UP, STATE = breaker_state_queries(NAMESPACE)


def test_the_breaker_queries_select_the_submitter_of_the_envs_namespace() -> None:
    assert UP == 'max(up{job="gx-outbox-submitter",namespace="backend-devnet"})'
    assert STATE == 'max(circuit_breaker_state{namespace="backend-devnet"})'


@pytest.mark.parametrize(("values", "state", "said"), [
    ({UP: 1.0, STATE: 0.0}, 0.0, "circuit_breaker_state 0 (closed) in backend-devnet (Prometheus)"),
    ({UP: 1.0, STATE: 1.0}, 1.0, "circuit_breaker_state 1 (open)"),
    ({UP: 0.0, STATE: 0.0}, None, "the gx-outbox-submitter target in backend-devnet is down"),
    ({STATE: 0.0}, None, "has no gx-outbox-submitter target in backend-devnet"),
    ({UP: 1.0}, None, "has no circuit_breaker_state in backend-devnet"),
])
def test_prometheus_gives_the_breaker_only_of_a_submitter_it_scrapes_now(values: dict[str, float],
                                                                        state: float | None, said: str) -> None:
    found, text = prometheus_breaker_state(FakePrometheus(values), NAMESPACE)  # type: ignore[arg-type]
    assert found == state and said in text


def test_the_probe_says_where_it_reads() -> None:
    assert SubmitterProbe(metrics_url="http://127.0.0.1:9101").where == "http://127.0.0.1:9101/metrics answers"
    prometheus = SubmitterProbe(prometheus=FakePrometheus({}), namespace=NAMESPACE)  # type: ignore[arg-type]
    assert prometheus.where == "gx-outbox-submitter in backend-devnet up in Prometheus at http://prometheus.test:9090"
    assert "submitter_metrics_url nor prometheus_url" in no_submitter_probe(Environment.DEVNET)


def test_the_reachability_check_names_what_was_found() -> None:
    assert reachable_check(Environment.LOCAL) == "devnet and backend reachable"
    assert reachable_check(Environment.TESTNET) == "backend API and Fabric network reachable"


# --- the remote backend's document, refused before the API is asked --------------------------------------------
def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "channel": "gxchannel-devnet",
        "peers": [{"name": "peer0.org1", "org": "org1", "msp_id": "Org1DevnetMSP", "endpoint": "peer0:7051"}],
        "identities": [{"name": "service", "org": "org1"}],
        "roles": {"service": "service", "org_admins": {"org1": "admin1"}},
    }
    document.update(changes)
    return document


def _params(tmp_path: Path, document: dict[str, Any] | None = None, **extra: object) -> BootstrapSystemParameters:
    network_file = tmp_path / "network.json"
    if document is not None:
        network_file.write_text(json.dumps(document))
    raw = {"env": "devnet", "api_url": "http://127.0.0.1:9", "api_token": "t", "fabric_network_file": str(network_file),
           **extra}
    _, params = prepare("03-bootstrap-system", raw, environ={})
    assert isinstance(params, BootstrapSystemParameters)
    return params


def _unavailable(find: Callable[[BootstrapSystemParameters, Progress], object],
                 params: BootstrapSystemParameters) -> Unavailable:
    """The Unavailable that finding the backend of ``params`` raises."""
    with pytest.raises(Unavailable) as caught:
        find(params, Progress(quiet=True))
    return caught.value


def test_an_unreadable_network_file_is_the_reason_naming_the_parameter(tmp_path: Path) -> None:
    # Validation refuses a missing file up front; this is one that went away between validation and the run.
    params = _params(tmp_path, _document())
    assert params.fabric_network_file is not None
    params.fabric_network_file.unlink()
    unavailable = _unavailable(remote_backend, params)
    assert unavailable.reason.startswith("fabric_network_file: cannot read the Fabric network file")
    assert unavailable.parameter == "fabric_network_file"


def test_a_network_file_of_another_channel_is_refused(tmp_path: Path) -> None:
    reason = _unavailable(backend_target, _params(tmp_path, _document(channel="gxchannel-testnet"))).reason
    assert "channel 'gxchannel-devnet' is not the channel of the Fabric network" in reason
    assert "set the channel parameter" in reason


def test_a_network_file_without_the_service_identity_is_refused(tmp_path: Path) -> None:
    document = _document(roles={"org_admins": {"org1": "admin1"}})
    reason = _unavailable(remote_backend, _params(tmp_path, document)).reason
    assert "names no service identity (roles.service)" in reason


def test_an_api_that_does_not_answer_is_the_reason_with_where_to_look(tmp_path: Path) -> None:
    unavailable = _unavailable(remote_backend, _params(tmp_path, _document()))
    reason = unavailable.reason
    assert "the backend API does not answer" in reason and unavailable.parameter == "api_url"
    assert "the devnet ingress, or a `kubectl port-forward` of the API Service" in reason


def test_an_empty_token_is_refused_although_the_parameter_is_set(tmp_path: Path) -> None:
    params = _params(tmp_path, _document()).model_copy(update={"api_token": SecretStr("")})
    assert "api_token" in _unavailable(remote_backend, params).reason


# --- the sections with a target that cannot see the submitter ------------------------------------------------
class FakeApi:
    base_url = "http://api.devnet.test"

    def system_status(self) -> Any:
        class Status:
            bootstrapped = True
        return Status()

    def close(self) -> None:
        pass


class FakeLedger:
    def system_status(self) -> dict[str, Any]:
        return {"bootstrapped": True}

    def close(self) -> None:
        pass


def _target(submitter: SubmitterProbe | None) -> BackendTarget:
    network = FabricNetwork.from_document(_document(), "gxchannel-devnet")
    target = BackendTarget(FakeApi(), FakeLedger(), network, submitter)  # type: ignore[arg-type]
    status = ChaincodeStatus(name="gxtv3", channel="gxchannel-devnet", committed=True, version="1.0", sequence=1,
                             approvals={}, installed={}, servers=[], answering=True)
    target.chaincode_status = lambda progress: status  # type: ignore[method-assign]
    return target


def _session(name: str, tmp_path: Path, **raw: object) -> Runbook:
    network_file = tmp_path / "devnet.json"
    network_file.write_text(json.dumps(_document()))
    raw = {"env": "devnet", "api_url": "http://api.devnet.test", "api_token": "t",
           "fabric_network_file": str(network_file), **raw}
    spec = runbook(name)
    _, params = prepare(name, raw, environ={})
    return Runbook(spec, params, dry_run=False, progress=Progress(quiet=True))


def test_03_without_a_way_to_see_the_submitter_skips_its_checks_saying_why(tmp_path: Path) -> None:
    rb = _session("03-bootstrap-system", tmp_path)
    bootstrap = BootstrapSystem(rb, _target(None))
    bootstrap.pre_checks()
    found = {c.name: c for c in rb.checks}
    assert found["backend API and Fabric network reachable"].status is CheckStatus.PASSED
    assert found["chaincode committed and answering"].status is CheckStatus.PASSED
    for name in ("submitter healthy", "circuit breaker closed"):
        assert found[name].status is CheckStatus.SKIPPED
        assert "neither submitter_metrics_url nor prometheus_url is set" in found[name].detail
    assert bootstrap.stopped is None and bootstrap.bootstrapped_before is True


def test_03_reads_the_breaker_from_prometheus_and_stops_when_it_is_open(tmp_path: Path) -> None:
    rb = _session("03-bootstrap-system", tmp_path)
    prometheus = FakePrometheus({UP: 1.0, STATE: 1.0})
    bootstrap = BootstrapSystem(rb, _target(SubmitterProbe(prometheus=prometheus,  # type: ignore[arg-type]
                                                           namespace=NAMESPACE)))
    bootstrap.pre_checks()
    found = {c.name: c for c in rb.checks}
    assert found["submitter healthy"].status is CheckStatus.PASSED
    assert found["circuit breaker closed"].status is CheckStatus.FAILED
    assert bootstrap.stopped == "the submitter is not healthy or its breaker is not closed: nothing is submitted"


def test_04_without_a_way_to_see_the_submitter_goes_on_with_the_check_skipped(tmp_path: Path) -> None:
    rb = _session("04-validate-cqrs", tmp_path)
    cqrs = ValidateCqrs(rb, _target(None))
    cqrs.connect()
    found = {c.name: c for c in rb.checks}
    assert found["circuit breaker closed"].status is CheckStatus.SKIPPED
    assert cqrs.stopped is None


class DuplicateAnsweringApi(FakeApi):
    """An API that answers every command as a duplicate of one an earlier run submitted (committed long ago)."""

    def __init__(self) -> None:
        self.accepted_at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def submit(self, command_type: str, payload: dict[str, Any], key: str) -> Any:
        class Accepted:
            commandId, duplicate, status = "c-earlier", True, "COMMITTED"
        return Accepted()

    def command(self, command_id: str) -> CommandView:
        return CommandView(commandId=command_id, type=CommandType.CREATE_USER, status="COMMITTED", payload={},
                           idempotencyKey="k", attempts=1, fabricTxId="tx", blockNumber=7, errorCode=None,
                           errorMessage=None, createdAt=self.accepted_at, firstSubmittedAt=self.accepted_at,
                           committedAt=self.accepted_at + timedelta(seconds=31), nextAttemptAt=self.accepted_at)

    def user(self, user_id: str) -> Any:
        return object()  # the read model has it


class UnknownUserLedger(FakeLedger):
    def user(self, user_id: str) -> None:
        return None


def test_04_a_command_answered_as_a_duplicate_is_already_done_and_not_timed(tmp_path: Path) -> None:
    rb = _session("04-validate-cqrs", tmp_path)
    target = _target(None)
    target.api, target.ledger = DuplicateAnsweringApi(), UnknownUserLedger()  # type: ignore[assignment]
    cqrs = ValidateCqrs(rb, target)
    cqrs.create_user()
    (step,) = rb.steps
    assert step.outcome is StepOutcome.ALREADY_DONE
    assert "submitted by an earlier run: c-earlier, committed in block 7" in step.detail
    assert cqrs.traces == [], "an earlier run's command is not timed against this run (no false 31 s breach)"
    cqrs.timings()
    assert {c.name: c.status for c in rb.checks}["per-stage timings"] is CheckStatus.SKIPPED


def test_the_run_says_which_endpoints_and_token_are_in_effect_without_showing_the_token(tmp_path: Path) -> None:
    target = _target(None)
    target.token, target.token_source = "s3cr3t", "/state/devnet/backend/api-token"
    shown = target.effective()
    assert shown.startswith("api_url=http://api.devnet.test, api_token=*** (from /state/devnet/backend/api-token)")
    assert "s3cr3t" not in shown and "channel=gxchannel-devnet" in shown
    rb = _session("04-validate-cqrs", tmp_path)
    ValidateCqrs(rb, target).connect()
    assert rb.found_secrets == ["s3cr3t"], "the summary masks the token the run used"
