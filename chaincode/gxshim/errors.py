"""Typed errors of the chaincode runtime.

Two families: :class:`ChaincodeError` is what contract code raises to reject a transaction (its message goes
back to the client as the endorsement error); :class:`ShimError` is a failure of the runtime itself or of the
peer conversation, carrying the channel, transaction ID and the request that failed.
"""

from __future__ import annotations


class GxShimError(Exception):
    """Root of the runtime's errors: a message for the operator and, optionally, what to do (``hint``).

    The runtime is installable on its own (no gxlib), so it has its own root; it mirrors gxlib's GxError.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ChaincodeError(GxShimError):
    """A transaction is rejected: the message is returned to the client with status 500, nothing is written.

    Contract code raises this (or a subclass) for invalid arguments, missing roles and business rules.
    """

    status = 500


class ArgumentError(ChaincodeError):
    """The arguments of a ``Contract:Function`` call do not fit its signature (count or type)."""

    def __init__(self, function: str, message: str) -> None:
        super().__init__(f"{function}: {message}")
        self.function = function


class UnknownFunctionError(ChaincodeError):
    """The called contract or function does not exist; the message names it and what does exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown function {name!r}; known: {', '.join(sorted(known)) or '(none)'}")
        self.name = name
        self.known = known


class ShimError(GxShimError):
    """A failure of the chaincode runtime or of its stream with the peer."""

    def __init__(self, message: str, *, channel: str = "", txid: str = "", hint: str | None = None) -> None:
        where = f" [channel {channel}, tx {txid}]" if txid else ""
        super().__init__(f"{message}{where}", hint=hint)
        self.channel = channel
        self.txid = txid


class PeerError(ShimError):
    """The peer answered a state request (GET_STATE, PUT_STATE, range query, ...) with an ERROR message.

    ``request`` is the request type, ``peer_message`` what the peer said.
    """

    def __init__(self, request: str, peer_message: str, *, channel: str, txid: str) -> None:
        super().__init__(f"peer refused {request}: {peer_message}", channel=channel, txid=txid)
        self.request = request
        self.peer_message = peer_message


class StreamClosedError(ShimError):
    """The stream to the peer ended while a transaction was waiting for an answer (peer restart or shutdown)."""


class ResponseTimeoutError(ShimError):
    """The peer did not answer a state request in time."""


class InvalidKeyError(ChaincodeError):
    """A state key or composite-key part is not acceptable (empty, bad UTF-8 or reserved characters)."""
