from __future__ import annotations

import grpc
import pytest
from fabric_protos.gateway import gateway_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from gxlib.fabric.commit import CommitStatus
from gxlib.fabric.errors import (
    CommitError,
    CommitStatusError,
    DeadlineExceededError,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    SubmitError,
    TransportError,
    UnavailableError,
    error_from_rpc,
)


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, peer_details: list[gateway_pb2.ErrorDetail] = ()) -> None:
        self._code, self._details = code, details
        status = status_pb2.Status(code=code.value[0], message=details)
        for detail in peer_details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),) if peer_details else ()

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailers


def test_a_chaincode_rejection_becomes_an_endorse_error_with_per_peer_details_and_the_chaincode_message() -> None:
    rpc = FakeRpcError(grpc.StatusCode.ABORTED, "failed to endorse transaction, see attached details for more info", [
        gateway_pb2.ErrorDetail(address="peer0.org1:7051", msp_id="Org1MSP",
                                message="chaincode response 500, amount must be greater than zero"),
    ])
    error = error_from_rpc(rpc, "endorse", endpoint="127.0.0.1:7051", tx_id="abc")
    assert isinstance(error, EndorseError)
    assert error.details == (ErrorDetail("peer0.org1:7051", "Org1MSP",
                                         "chaincode response 500, amount must be greater than zero"),)
    assert error.chaincode_message == "amount must be greater than zero"
    assert error.chaincode_status == 500
    assert (error.tx_id, error.code) == ("abc", grpc.StatusCode.ABORTED)
    assert "peer0.org1:7051 (Org1MSP)" in str(error) and "abc" in str(error)


def test_an_evaluate_failure_without_details_keeps_the_chaincode_message_from_the_status() -> None:
    rpc = FakeRpcError(grpc.StatusCode.UNKNOWN, "evaluate call to endorser returned error: chaincode response 500, "
                                                "key 'x' does not exist")
    error = error_from_rpc(rpc, "evaluate", endpoint="e")
    assert isinstance(error, EvaluateError) and isinstance(error, EndorseError)
    assert error.chaincode_message == "key 'x' does not exist"


@pytest.mark.parametrize("operation", ["endorse", "evaluate", "submit", "commit status", "events"])
def test_unavailable_and_deadline_are_transport_errors_whatever_the_operation(operation: str) -> None:
    down = error_from_rpc(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"), operation, endpoint="e")
    slow = error_from_rpc(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline"), operation, endpoint="e")
    assert isinstance(down, UnavailableError) and isinstance(down, TransportError)
    assert isinstance(slow, DeadlineExceededError) and isinstance(slow, TransportError)
    assert down.hint and slow.hint


def test_other_failures_map_to_the_error_of_their_operation() -> None:
    submit = error_from_rpc(FakeRpcError(grpc.StatusCode.ABORTED, "orderer said no"), "submit", endpoint="e")
    status = error_from_rpc(FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "no"), "commit status", endpoint="e")
    assert isinstance(submit, SubmitError) and not isinstance(submit, TransportError)
    assert isinstance(status, CommitStatusError)


@pytest.mark.parametrize(("code", "name"), [(11, "MVCC_READ_CONFLICT"), (9, "DUPLICATE_TXID"),
                                            (12, "PHANTOM_READ_CONFLICT"), (10, "ENDORSEMENT_POLICY_FAILURE")])
def test_an_invalid_commit_raises_commit_error_with_the_validation_code_name(code: int, name: str) -> None:
    status = CommitStatus("tx9", code, 42)
    assert not status.successful and status.code_name == name
    with pytest.raises(CommitError) as caught:
        status.raise_for_status()
    assert (caught.value.code, caught.value.tx_id, caught.value.block_number) == (name, "tx9", 42)
    assert name in str(caught.value)


def test_a_valid_commit_passes() -> None:
    status = CommitStatus("tx1", 0, 3)
    assert status.successful and status.code_name == "VALID"
    assert status.raise_for_status() is status


def test_differing_endorsements_are_told_from_a_chaincode_refusal() -> None:
    mismatch = error_from_rpc(FakeRpcError(
        grpc.StatusCode.ABORTED, "failed to collect enough transaction endorsements, see attached details", [
            gateway_pb2.ErrorDetail(address="127.0.0.1:9051", msp_id="Org2MSP",
                                    message="ProposalResponsePayloads do not match"),
        ]), "endorse", endpoint="e")
    refused = error_from_rpc(FakeRpcError(grpc.StatusCode.ABORTED, "failed to endorse transaction", [
        gateway_pb2.ErrorDetail(address="127.0.0.1:7051", msp_id="Org1MSP",
                                message="chaincode response 500, ProposalResponsePayloads do not match"),
    ]), "endorse", endpoint="e")
    unreachable = error_from_rpc(FakeRpcError(grpc.StatusCode.ABORTED, "failed to collect endorsements", [
        gateway_pb2.ErrorDetail(address="127.0.0.1:9051", msp_id="Org2MSP", message="connection refused"),
    ]), "endorse", endpoint="e")
    assert isinstance(mismatch, EndorseError) and mismatch.payloads_differ
    assert isinstance(refused, EndorseError) and not refused.payloads_differ
    assert isinstance(unreachable, EndorseError) and not unreachable.payloads_differ
