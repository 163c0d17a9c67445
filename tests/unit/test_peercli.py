"""PeerCliError: what an operator sees when a `peer` CLI call fails."""

from __future__ import annotations

from gxlib.devnet.peercli import PeerCliError


def test_peer_cli_error_keeps_its_message_as_the_exception_args_and_the_command_apart() -> None:
    error = PeerCliError("peer0.org1.gx", ["chaincode", "query", "-C", "gxchannel"], "Error: key 'x' does not exist\n")

    # repr() (logs, pytest, the notebook's traceback header) shows what failed, not bare CLI words.
    assert error.args == (str(error),)
    assert "against peer0.org1.gx failed" in repr(error)
    assert error.command == ["chaincode", "query", "-C", "gxchannel"]
    assert error.peer == "peer0.org1.gx"
    assert error.output == "Error: key 'x' does not exist\n"
