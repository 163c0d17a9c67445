"""A small contract framework on top of the shim: contract classes whose methods are chaincode functions.

    class AssetContract(Contract):
        @transaction
        def Put(self, ctx: Context, key: str, value: str) -> None: ...

        @evaluate
        def Get(self, ctx: Context, key: str) -> str: ...

    chaincode = ContractChaincode([AssetContract()])

Clients call ``AssetContract:Put``; a name without ``:`` goes to the first (default) contract. Arguments are
parsed from their string form by the parameter annotations (str, int, UInt64, float, bool, bytes, dict/list as
JSON)
and checked for count; mistakes come back as an error response naming the function and parameter.
``@evaluate`` functions are read-only (a write raises). Return values are encoded as: bytes as is, str as
UTF-8, None as empty, anything else as JSON. ``org.hyperledger.fabric:GetMetadata`` returns the contracts,
their functions and parameter schemas as JSON.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from gxshim.errors import ArgumentError, ChaincodeError, UnknownFunctionError
from gxshim.identity import ClientIdentity
from gxshim.response import Response, error, success
from gxshim.stub import ChaincodeStub

SYSTEM_CONTRACT = "org.hyperledger.fabric"
SUBMIT = "submit"
EVALUATE = "evaluate"

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """What a contract function receives first: the stub (ledger calls) and the creator."""

    def __init__(self, stub: ChaincodeStub) -> None:
        self.stub = stub

    @property
    def client_identity(self) -> ClientIdentity:
        return self.stub.creator


def _mark(kind: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        fn.__gx_kind__ = kind  # type: ignore[attr-defined]
        return fn
    return decorate


def transaction(fn: F) -> F:
    """Declare a function that may write state (clients submit it)."""
    return _mark(SUBMIT)(fn)


def evaluate(fn: F) -> F:
    """Declare a read-only function (clients evaluate it); a write inside it raises ReadOnlyError."""
    return _mark(EVALUATE)(fn)


# --- argument parsing ------------------------------------------------------------------------------------------
UINT64_MAX = 2**64 - 1


class UInt64(int):
    """Annotate a parameter as ``UInt64`` to accept only integers in 0..2**64-1 (token amounts)."""


_SCHEMAS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    UInt64: {"type": "integer", "minimum": 0, "maximum": UINT64_MAX},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "format": "byte"},
    dict: {"type": "object"},
    list: {"type": "array"},
}


def _parse(kind: Any, raw: bytes, function: str, param: str) -> Any:
    origin = typing.get_origin(kind) or kind
    if origin is bytes:
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArgumentError(function, f"argument {param!r} is not UTF-8 text") from None
    if origin in (str, Any, inspect.Parameter.empty):
        return text
    if origin in (int, UInt64):
        body = text[1:] if text[:1] in "+-" else text
        if not body.isascii() or not body.isdigit():
            raise ArgumentError(function, f"argument {param!r} must be an integer, got {text!r}")
        number = int(text)
        if origin is UInt64 and not 0 <= number <= UINT64_MAX:
            raise ArgumentError(function, f"argument {param!r} must be between 0 and {UINT64_MAX}, got {text}")
        return UInt64(number) if origin is UInt64 else number
    if origin is float:
        try:
            return float(text)
        except ValueError:
            raise ArgumentError(function, f"argument {param!r} must be a number, got {text!r}") from None
    if origin is bool:
        if text.lower() not in ("true", "false"):
            raise ArgumentError(function, f"argument {param!r} must be true or false, got {text!r}")
        return text.lower() == "true"
    if origin in (dict, list):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArgumentError(function, f"argument {param!r} is not valid JSON: {exc.msg}") from None
        if not isinstance(value, origin):
            raise ArgumentError(function, f"argument {param!r} must be a JSON {origin.__name__}")
        return value
    raise ArgumentError(function, f"parameter {param!r} has an unsupported type {kind!r}")


def _encode(result: Any) -> bytes:
    if result is None:
        return b""
    if isinstance(result, bytes | bytearray):
        return bytes(result)
    if isinstance(result, str):
        return result.encode("utf-8")
    return json.dumps(result, separators=(",", ":"), sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class Parameter:
    name: str
    annotation: Any

    def schema(self) -> dict[str, Any]:
        return dict(_SCHEMAS.get(typing.get_origin(self.annotation) or self.annotation, {"type": "string"}))


@dataclass(frozen=True)
class Function:
    """One callable chaincode function: ``contract:name`` with its parameters and kind (submit/evaluate)."""

    contract: str
    name: str
    kind: str
    parameters: tuple[Parameter, ...]
    method: Callable[..., Any]
    returns: Any

    @property
    def full_name(self) -> str:
        return f"{self.contract}:{self.name}"

    def parse_arguments(self, args: Sequence[bytes]) -> list[Any]:
        if len(args) != len(self.parameters):
            names = ", ".join(p.name for p in self.parameters) or "none"
            raise ArgumentError(self.full_name,
                                f"expects {len(self.parameters)} argument(s) ({names}), got {len(args)}")
        return [_parse(p.annotation, raw, self.full_name, p.name) for p, raw in zip(self.parameters, args, strict=True)]

    def metadata(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "tags": [SUBMIT] if self.kind == SUBMIT else [EVALUATE],
            "parameters": [{"name": p.name, "schema": p.schema()} for p in self.parameters],
        }
        if self.returns not in (None, type(None), inspect.Signature.empty):
            entry["returns"] = {"schema": Parameter("return", self.returns).schema()}
        return entry


class Contract:
    """Base class of contracts. ``name`` defaults to the class name; functions are methods marked with
    :func:`transaction` or :func:`evaluate` taking ``(self, ctx, *args)``.

    Override :meth:`before_transaction` for checks that apply to every function of the contract.
    """

    name: ClassVar[str] = ""

    @classmethod
    def contract_name(cls) -> str:
        return cls.name or cls.__name__

    def before_transaction(self, ctx: Context, function: Function) -> None:
        """Called before every function of this contract; raise ChaincodeError to refuse the call."""

    def functions(self) -> dict[str, Function]:
        """The contract's chaincode functions by name."""
        found: dict[str, Function] = {}
        for attr, member in inspect.getmembers(type(self), predicate=inspect.isfunction):
            kind = getattr(member, "__gx_kind__", None)
            if kind is None:
                continue
            hints = typing.get_type_hints(member)
            params = list(inspect.signature(member).parameters.values())[2:]  # drop self, ctx
            for p in params:
                if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                    raise TypeError(f"{self.contract_name()}.{attr}: only plain positional parameters are supported")
            found[attr] = Function(self.contract_name(), attr, kind,
                                   tuple(Parameter(p.name, hints.get(p.name, str)) for p in params),
                                   getattr(self, attr), hints.get("return", inspect.Signature.empty))
        return found


class ContractChaincode:
    """A chaincode (for :class:`~gxshim.server.ChaincodeServer`) that routes ``Contract:Function`` calls."""

    def __init__(self, contracts: Sequence[Contract], *, title: str = "chaincode", version: str = "") -> None:
        if not contracts:
            raise ValueError("a chaincode needs at least one contract")
        self.contracts = {c.contract_name(): c for c in contracts}
        if len(self.contracts) != len(contracts):
            raise ValueError("two contracts share a name")
        self.default_contract = contracts[0].contract_name()
        self.title = title
        self.version = version
        self._functions: dict[str, Function] = {}
        for contract in contracts:
            for fn in contract.functions().values():
                self._functions[fn.full_name] = fn

    def resolve(self, name: str) -> Function:
        """The function a client's first argument names (raises UnknownFunctionError)."""
        contract, _, fn = name.rpartition(":")
        contract = contract or self.default_contract
        if contract not in self.contracts:
            raise UnknownFunctionError(name, list(self.contracts))
        found = self._functions.get(f"{contract}:{fn}")
        if found is None:
            raise UnknownFunctionError(name, [f for f in self._functions if f.startswith(contract + ":")])
        return found

    def metadata(self) -> dict[str, Any]:
        """Contracts, functions and parameter schemas (what ``org.hyperledger.fabric:GetMetadata`` returns)."""
        contracts: dict[str, Any] = {}
        for name, contract in self.contracts.items():
            fns = sorted(contract.functions().values(), key=lambda f: f.name)
            contracts[name] = {"name": name, "transactions": [f.metadata() for f in fns]}
        return {"info": {"title": self.title, "version": self.version}, "contracts": contracts,
                "components": {"schemas": {}}}

    def init(self, stub: ChaincodeStub) -> Response:
        # Contracts need no Init; a definition committed with --init-required gets a successful no-op.
        return success() if not stub.args else self.invoke(stub)

    def invoke(self, stub: ChaincodeStub) -> Response:
        if not stub.args:
            return error("no function given: the first argument must be 'Contract:Function'")
        name = stub.function
        if name == f"{SYSTEM_CONTRACT}:GetMetadata":
            return success(_encode(self.metadata()))
        try:
            fn = self.resolve(name)
            args = fn.parse_arguments(stub.args[1:])
            stub.read_only = fn.kind == EVALUATE
            ctx = Context(stub)
            self.contracts[fn.contract].before_transaction(ctx, fn)
            return success(_encode(fn.method(ctx, *args)))
        except ChaincodeError as exc:
            return error(exc.message, exc.status)
