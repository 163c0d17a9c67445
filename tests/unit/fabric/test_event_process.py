"""The event reader process: a real child process reading a fake peer's blocks on loopback TLS, its frames, and what
the parent sees when the child fails, dies or is left early."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gxlib.fabric.event_process import CHUNK_EVENTS, EventReaderError, EventReaderProcess
from gxlib.fabric.events import EventTuple, event_tuples_in_block, events_in_block

from .builders import block, endorsed_envelope, key_pem, new_key, self_signed_cert
from .test_events import VALID, FakePeer, _ledger, _serve


@pytest.fixture()
def peer_tls() -> tuple[bytes, bytes]:
    key = new_key()
    return key_pem(key), self_signed_cert(key, "peer0.test.local", ("peer0.test.local",), ca=True)


def _environment(tmp_path: Path, port: int, ca_cert: bytes) -> dict[str, Any]:
    key = new_key()
    (tmp_path / "ca.pem").write_bytes(ca_cert)
    (tmp_path / "cert.pem").write_bytes(self_signed_cert(key))
    (tmp_path / "key.pem").write_bytes(key_pem(key))
    return {
        "peers": [{"org": "org1", "name": "peer0.test.local", "endpoint": f"127.0.0.1:{port}",
                   "tls_ca_file": str(tmp_path / "ca.pem"), "tls_server_name": "peer0.test.local",
                   "msp_id": "Org1MSP"}],
        "identities": [{"name": "service", "org": "org1", "msp_id": "Org1MSP",
                        "cert_file": str(tmp_path / "cert.pem"), "key_file": str(tmp_path / "key.pem")}],
    }


async def _read_all(environment: dict[str, Any], last_block: int, **kwargs: Any
                    ) -> tuple[list[list[EventTuple]], EventReaderProcess]:
    async with await EventReaderProcess.start() as reader:
        frames = [frame async for frame in reader.events(environment, "ch", "gx", 0, last_block, **kwargs)]
    return frames, reader


def test_the_child_reads_the_blocks_and_gives_the_events_of_valid_transactions_in_order(peer_tls, tmp_path) -> None:
    ledger = _ledger()

    async def run() -> tuple[list[list[EventTuple]], EventReaderProcess]:
        server, port = await _serve(FakePeer(ledger, drop_after=None), peer_tls)
        try:
            return await _read_all(_environment(tmp_path, port, peer_tls[1]), len(ledger) - 1)
        finally:
            await server.stop(None)

    frames, reader = asyncio.run(run())
    events = [event for frame in frames for event in frame]
    assert [(e[0], e[1], e[2]) for e in events] == [(1, 0, "b1t0"), (1, 1, "b1t1"), (2, 3, "b2t3"), (3, 0, "b3t0"),
                                                   (4, 0, "b4t0"), (4, 1, "b4t1")]
    # The same values as the in-process events: name, payload and the transaction's timestamp.
    expected = [e for b in ledger for e in events_in_block(b, "gx")]
    assert [(name, payload, datetime.fromtimestamp(seconds, UTC)) for _b, _i, _t, name, payload, seconds in events] \
        == [(e.event_name, e.payload, e.timestamp) for e in expected]
    assert reader.cpu_s is not None and reader.cpu_s > 0
    assert reader.returncode == 0


def test_events_come_in_frames_of_at_least_the_chunk_size_and_stop_at_the_last_block(peer_tls, tmp_path) -> None:
    per_block = 100
    ledger = [block(n, [endorsed_envelope(f"b{n}t{i}", chaincode="gx", event=("E", b"x"))
                        for i in range(per_block)], [VALID] * per_block) for n in range(12)]

    async def run() -> list[list[EventTuple]]:
        server, port = await _serve(FakePeer(ledger, drop_after=None), peer_tls)
        try:
            frames, _reader = await _read_all(_environment(tmp_path, port, peer_tls[1]), 9)
            return frames
        finally:
            await server.stop(None)

    frames = asyncio.run(run())
    assert sum(len(f) for f in frames) == 10 * per_block  # blocks 0..9, not 10 and 11
    assert all(len(f) >= CHUNK_EVENTS for f in frames[:-1]) and len(frames) == 2
    assert frames[-1][-1][2] == "b9t99"
    assert [e for f in frames for e in f] == [e for b in ledger[:10] for e in event_tuples_in_block(b, "gx")]


def test_an_unknown_identity_is_the_childs_own_error_with_its_class_name(peer_tls, tmp_path) -> None:
    async def run() -> None:
        await _read_all(_environment(tmp_path, 1, peer_tls[1]), 3, identity="nobody")

    with pytest.raises(EventReaderError) as raised:
        asyncio.run(run())
    assert "failed reading blocks 0..3 of channel ch" in str(raised.value)
    assert "nobody" in str(raised.value) and raised.value.error is not None


def test_an_unreachable_peer_is_a_transport_error_naming_the_peer(peer_tls, tmp_path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def run() -> None:
        await asyncio.wait_for(_read_all(_environment(tmp_path, port, peer_tls[1]), 3), 60)

    with pytest.raises(EventReaderError) as raised:
        asyncio.run(run())
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert raised.value.error in ("UnavailableError", "TransportError")


def test_a_child_that_dies_is_an_error_with_its_exit_code(peer_tls, tmp_path) -> None:
    async def run() -> None:
        server, port = await _serve(FakePeer(_ledger(), drop_after=None), peer_tls)
        try:
            reader = await EventReaderProcess.start()
            reader._process.kill()  # the test plays the OOM killer
            await reader._process.wait()
            async for _frame in reader.events(_environment(tmp_path, port, peer_tls[1]), "ch", "gx", 0, 4):
                pass
        finally:
            await server.stop(None)

    with pytest.raises(EventReaderError, match=r"ended \(exit code -9\) before the end of blocks 0\.\.4"):
        asyncio.run(run())


def test_leaving_early_stops_the_child(peer_tls, tmp_path) -> None:
    ledger = [block(n, [endorsed_envelope(f"b{n}t{i}", chaincode="gx", event=("E", b"x"))
                        for i in range(CHUNK_EVENTS)], [VALID] * CHUNK_EVENTS) for n in range(6)]

    async def run() -> EventReaderProcess:
        server, port = await _serve(FakePeer(ledger, drop_after=None), peer_tls)
        try:
            reader = await EventReaderProcess.start()
            frames = reader.events(_environment(tmp_path, port, peer_tls[1]), "ch", "gx", 0, 5)
            async for _frame in frames:
                break
            await frames.aclose()
            return reader
        finally:
            await server.stop(None)

    reader = asyncio.run(run())
    assert reader.returncode is not None


def test_ready_waits_for_the_childs_start_up_and_events_follow_without_a_second_wait(peer_tls, tmp_path) -> None:
    ledger = _ledger()

    async def run() -> tuple[bool, list[EventTuple]]:
        server, port = await _serve(FakePeer(ledger, drop_after=None), peer_tls)
        try:
            async with await EventReaderProcess.start() as reader:
                await reader.ready()
                # Started: it has imported what it needs and waits for the request, so it is still running.
                waiting = reader.returncode is None
                await reader.ready()  # a second call returns at once
                events = [e async for frame in reader.events(_environment(tmp_path, port, peer_tls[1]), "ch", "gx",
                                                              0, len(ledger) - 1) for e in frame]
            return waiting, events
        finally:
            await server.stop(None)

    waiting, events = asyncio.run(run())
    assert waiting
    assert [e[2] for e in events] == ["b1t0", "b1t1", "b2t3", "b3t0", "b4t0", "b4t1"]


def test_a_child_that_dies_before_it_is_ready_is_an_error_with_its_exit_code() -> None:
    async def run() -> None:
        reader = await EventReaderProcess.start()
        reader._process.kill()  # before its imports are done
        await reader._process.wait()
        await reader.ready()

    with pytest.raises(EventReaderError, match=r"ended \(exit code -9\) before the end of its start-up"):
        asyncio.run(run())
