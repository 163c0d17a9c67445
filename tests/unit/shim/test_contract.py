"""Contract:Function routing, argument parsing and metadata, without a peer (a stub over an in-memory ledger)."""

from __future__ import annotations

import json

import pytest
from fabric_protos.peer import chaincode_pb2
from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2

from gxshim import ChaincodeError, Context, Contract, ContractChaincode, UInt64, evaluate, transaction
from gxshim.stub import ChaincodeStub

T = shim_pb2.ChaincodeMessage.Type


class MemoryLink:
    """Answers GET/PUT/DEL_STATE from a dict, standing in for the peer."""

    def __init__(self) -> None:
        self.state: dict[str, bytes] = {}

    def ask(self, channel_id: str, txid: str, msg_type: int, payload: bytes) -> bytes:
        if msg_type == T.GET_STATE:
            return self.state.get(shim_pb2.GetState.FromString(payload).key, b"")
        if msg_type == T.PUT_STATE:
            put = shim_pb2.PutState.FromString(payload)
            self.state[put.key] = put.value
            return b""
        raise AssertionError(f"unexpected {T.Name(msg_type)}")


class Token(Contract):
    @transaction
    def Mint(self, ctx: Context, account: str, amount: UInt64, remark: str) -> dict[str, object]:
        if not remark:
            raise ChaincodeError("remark cannot be empty - must document reason for minting")
        ctx.stub.put_state(account, str(amount))
        return {"account": account, "amount": amount}

    @evaluate
    def Balance(self, ctx: Context, account: str) -> int:
        return int(ctx.stub.get_state(account) or b"0")

    @evaluate
    def SneakyWrite(self, ctx: Context) -> None:
        ctx.stub.put_state("x", "y")

    @transaction
    def Flags(self, ctx: Context, on: bool, ratio: float, doc: dict, items: list, raw: bytes) -> list[object]:
        return [on, ratio, doc, items, raw.hex()]

    def helper(self) -> None:  # not a chaincode function
        pass


class Admin(Contract):
    name = "AdminContract"

    def before_transaction(self, ctx: Context, function: object) -> None:
        raise ChaincodeError("caller lacks role gx_super_admin")

    @transaction
    def Bootstrap(self, ctx: Context) -> None:
        pass


@pytest.fixture
def chaincode() -> ContractChaincode:
    return ContractChaincode([Token(), Admin()], title="test", version="1")


def call(cc: ContractChaincode, *args: str | bytes, link: MemoryLink | None = None) -> tuple[int, str, bytes]:
    chaincode_input = chaincode_pb2.ChaincodeInput(args=[a.encode() if isinstance(a, str) else a for a in args])
    stub = ChaincodeStub(link or MemoryLink(), "ch", "tx1", chaincode_input, None)
    result = cc.invoke(stub)
    return result.status, result.message, result.payload


def test_contract_function_routing_and_json_result(chaincode: ContractChaincode) -> None:
    link = MemoryLink()
    status, _, payload = call(chaincode, "Token:Mint", "acc1", "500", "genesis", link=link)
    assert status == 200 and json.loads(payload) == {"account": "acc1", "amount": 500}
    assert call(chaincode, "Token:Balance", "acc1", link=link)[2] == b"500"


def test_name_without_contract_goes_to_the_first_contract(chaincode: ContractChaincode) -> None:
    assert call(chaincode, "Balance", "nobody")[:1] == (200,)


def test_unknown_contract_and_function_are_named(chaincode: ContractChaincode) -> None:
    status, message, _ = call(chaincode, "Nope:Mint")
    assert status == 500 and "unknown function 'Nope:Mint'" in message and "AdminContract" in message
    _, message, _ = call(chaincode, "Token:Burn")
    assert "unknown function 'Token:Burn'" in message and "Token:Mint" in message
    _, message, _ = call(chaincode, "Token:helper")
    assert "unknown function" in message


def test_argument_count_and_types_are_checked_with_clear_errors(chaincode: ContractChaincode) -> None:
    _, message, _ = call(chaincode, "Token:Mint", "acc1")
    assert message == "Token:Mint: expects 3 argument(s) (account, amount, remark), got 1"
    _, message, _ = call(chaincode, "Token:Mint", "acc1", "12x", "r")
    assert message == "Token:Mint: argument 'amount' must be an integer, got '12x'"
    _, message, _ = call(chaincode, "Token:Mint", "acc1", str(2**64), "r")
    assert "must be between 0 and 18446744073709551615" in message
    _, message, _ = call(chaincode, "Token:Mint", "acc1", "-1", "r")
    assert "must be between 0" in message
    _, message, _ = call(chaincode, "Token:Flags", "maybe", "1", "{}", "[]", b"\x00")
    assert "argument 'on' must be true or false" in message
    _, message, _ = call(chaincode, "Token:Flags", "true", "1", "[1]", "[]", b"\x00")
    assert "argument 'doc' must be a JSON dict" in message


def test_typed_arguments_are_parsed(chaincode: ContractChaincode) -> None:
    status, _, payload = call(chaincode, "Token:Flags", "TRUE", "0.5", '{"a":1}', "[1,2]", b"\xff\x00")
    assert status == 200 and json.loads(payload) == [True, 0.5, {"a": 1}, [1, 2], "ff00"]


def test_business_error_is_an_error_response_and_nothing_is_written(chaincode: ContractChaincode) -> None:
    link = MemoryLink()
    status, message, _ = call(chaincode, "Token:Mint", "acc1", "5", "", link=link)
    assert (status, message) == (500, "remark cannot be empty - must document reason for minting")
    assert link.state == {}


def test_evaluate_functions_cannot_write(chaincode: ContractChaincode) -> None:
    status, message, _ = call(chaincode, "Token:SneakyWrite")
    assert status == 500 and "evaluate-only" in message


def test_before_transaction_can_refuse_every_call_of_a_contract(chaincode: ContractChaincode) -> None:
    assert call(chaincode, "AdminContract:Bootstrap")[1] == "caller lacks role gx_super_admin"


def test_no_function_is_an_error(chaincode: ContractChaincode) -> None:
    assert "no function given" in call(chaincode)[1]


def test_get_metadata_describes_contracts_functions_and_parameters(chaincode: ContractChaincode) -> None:
    status, _, payload = call(chaincode, "org.hyperledger.fabric:GetMetadata")
    meta = json.loads(payload)
    assert status == 200 and meta["info"] == {"title": "test", "version": "1"}
    token = {t["name"]: t for t in meta["contracts"]["Token"]["transactions"]}
    assert set(token) == {"Mint", "Balance", "SneakyWrite", "Flags"}
    assert token["Mint"]["tags"] == ["submit"] and token["Balance"]["tags"] == ["evaluate"]
    assert token["Mint"]["parameters"][1] == {"name": "amount", "schema": {
        "type": "integer", "minimum": 0, "maximum": 2**64 - 1}}
    assert token["Balance"]["returns"] == {"schema": {"type": "integer"}}
    assert "AdminContract" in meta["contracts"]


def test_duplicate_contract_names_are_refused() -> None:
    with pytest.raises(ValueError, match="share a name"):
        ContractChaincode([Token(), Token()])
