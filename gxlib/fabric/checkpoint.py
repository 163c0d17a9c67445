"""Where a chaincode-event consumer has got to: a block number and a transaction index within that block.

A :class:`Checkpoint` names the *last position handled*; an event stream resumed from it starts at the next
transaction, so nothing is lost and nothing is delivered twice. ``Checkpoint(n, -1)`` means "nothing of block
``n`` handled yet" (start at block ``n``). A consumer that must advance its checkpoint in the same database
transaction as its own writes (the projector) implements :class:`Checkpointer` over its own table.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from gxlib.errors import GxError


class CheckpointError(GxError):
    """A stored checkpoint cannot be read or written."""


@dataclass(frozen=True, order=True)
class Checkpoint:
    """The last handled position: block ``block_number``, transaction index ``tx_index`` (``-1``: none yet)."""

    block_number: int
    tx_index: int = -1

    def __post_init__(self) -> None:
        if self.block_number < 0 or self.tx_index < -1:
            raise CheckpointError(f"invalid checkpoint position ({self.block_number}, {self.tx_index})")

    @classmethod
    def start_of(cls, block_number: int) -> Checkpoint:
        """The position before the first transaction of ``block_number``."""
        return cls(block_number, -1)

    def is_after(self, block_number: int, tx_index: int) -> bool:
        """True if the transaction at (``block_number``, ``tx_index``) was already handled."""
        return (block_number, tx_index) <= (self.block_number, self.tx_index)


@runtime_checkable
class Checkpointer(Protocol):
    """Stores a consumer's checkpoint. ``checkpoint`` is ``None`` before anything was stored."""

    @property
    def checkpoint(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...


class InMemoryCheckpointer:
    """A checkpointer for one process's lifetime (tests, notebooks)."""

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self._checkpoint = checkpoint

    @property
    def checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    def save(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint


class FileCheckpointer:
    """A checkpointer in a small JSON file, replaced atomically (write, fsync, rename) on every save."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._checkpoint = self._load()

    def _load(self) -> Checkpoint | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read the checkpoint file {self.path}: {exc}") from exc
        try:
            return Checkpoint(int(data["block_number"]), int(data["tx_index"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint file {self.path} holds no valid checkpoint: {data!r}") from exc

    @property
    def checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    def save(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"block_number": checkpoint.block_number, "tx_index": checkpoint.tx_index})
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._checkpoint = checkpoint
