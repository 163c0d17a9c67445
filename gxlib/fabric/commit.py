"""The commit status of a transaction: its validation code and the block it is in."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.peer import transaction_pb2

from gxlib.fabric.errors import CommitError


def validation_code_name(code: int) -> str:
    """``TxValidationCode`` name (``VALID``, ``MVCC_READ_CONFLICT``, …) for a numeric code."""
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return f"UNKNOWN_CODE_{code}"


@dataclass(frozen=True)
class CommitStatus:
    """How the peers validated a committed transaction."""

    tx_id: str
    code: int
    block_number: int

    @property
    def code_name(self) -> str:
        return validation_code_name(self.code)

    @property
    def successful(self) -> bool:
        return self.code == transaction_pb2.VALID

    def raise_for_status(self) -> CommitStatus:
        """Return self if VALID, else raise :class:`~gxlib.fabric.errors.CommitError` with the code name."""
        if not self.successful:
            raise CommitError(self.tx_id, self.code_name, self.block_number)
        return self
