from __future__ import annotations

import re

import pytest

from gxlib.fabric.checkpoint import (
    Checkpoint,
    CheckpointError,
    FileCheckpointer,
    InMemoryCheckpointer,
)


def test_checkpoints_order_by_block_then_transaction_index() -> None:
    assert Checkpoint(3, 5) < Checkpoint(4, -1) < Checkpoint(4, 0)
    assert Checkpoint.start_of(7) == Checkpoint(7, -1)
    handled = Checkpoint(4, 2)
    assert handled.is_after(4, 2) and handled.is_after(3, 99)
    assert not handled.is_after(4, 3) and not handled.is_after(5, 0)
    assert not Checkpoint.start_of(4).is_after(4, 0)


def test_negative_positions_are_refused() -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(-1, 0)
    with pytest.raises(CheckpointError):
        Checkpoint(1, -2)


def test_in_memory_checkpointer_keeps_the_last_saved_position() -> None:
    checkpointer = InMemoryCheckpointer()  # a Checkpointer: checked statically in tests/unit/static_protocols.py
    assert checkpointer.checkpoint is None
    checkpointer.save(Checkpoint(2, 1))
    assert checkpointer.checkpoint == Checkpoint(2, 1)


def test_file_checkpointer_survives_a_restart_and_leaves_no_temporary_files(tmp_path) -> None:
    path = tmp_path / "state" / "projector.checkpoint"
    first = FileCheckpointer(path)  # a Checkpointer: checked statically in tests/unit/static_protocols.py
    assert first.checkpoint is None
    first.save(Checkpoint(10, 3))
    first.save(Checkpoint(11, 0))
    assert FileCheckpointer(path).checkpoint == Checkpoint(11, 0)
    assert [p.name for p in path.parent.iterdir()] == ["projector.checkpoint"]


def test_a_corrupt_checkpoint_file_is_an_error_not_a_silent_restart_from_zero(tmp_path) -> None:
    path = tmp_path / "cp.json"
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        FileCheckpointer(path)
    path.write_text('{"block_number": 1}')
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        FileCheckpointer(path)
