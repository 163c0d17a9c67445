"""The chaincode events of a block range read by a child process, so that block delivery and its parsing run on
another core than the code that consumes the events (a ledger replay applies events while the child reads on).

:meth:`EventReaderProcess.start` starts ``python -m gxlib.fabric.event_process``; the child imports what it needs,
says it is ready and waits for one request on its stdin, so its start-up can overlap the parent's own preparation;
:meth:`EventReaderProcess.ready` waits for the end of that start-up (0.15–0.2 s measured), so that a caller timing the
delivery can leave it out.
:meth:`EventReaderProcess.events` sends the request (environment, identity, channel, chaincode, block range) and
yields the events as lists of :data:`~gxlib.fabric.events.EventTuple`, in ledger order. The child connects to the
identity's Gateway peer, reads blocks ``first_block``..``last_block`` from its block delivery and writes frames to
its stdout: a 4-byte length and a kind byte, then

- ``R``: ready, empty: the child has imported what it needs (its first frame, sent before it reads the request);
- ``E``: a ``marshal``-ed list of event tuples (at least :data:`CHUNK_EVENTS` of them, or the rest at the end);
- ``D``: done, JSON ``{"blocks": n, "events": m, "cpu_s": s}`` (the child's CPU-seconds from the request on:
  :attr:`EventReaderProcess.cpu_s`);
- ``X``: the error that stopped it, JSON ``{"error": class name, "message": ..., "hint": ...}``.

The pipe gives back-pressure: a child ahead of its consumer blocks on a full pipe, and gRPC's flow control stops
the peer. A child that fails, or dies, raises :class:`EventReaderError` in the parent naming the block range, with
the child's own message or the end of its stderr. Leaving :meth:`events` early (or an error) kills the child.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import marshal
import struct
import sys
import time
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, BinaryIO, cast

from gxlib.errors import GxError
from gxlib.fabric.errors import FabricError
from gxlib.fabric.events import EventTuple, event_tuples_in_block
from gxlib.fabric.gateway import Gateway

CHUNK_EVENTS = 512
_HEADER = struct.Struct(">IB")
_PIPE_BYTES = 1 << 20  # asked for the child's stdout pipe (Linux F_SETPIPE_SZ), so the child can read ahead
_STREAM_LIMIT = 1 << 22
_STDERR_LINES = 40


class EventReaderError(FabricError):
    """The event reader process failed or died. ``error`` is the class name of the child's own error, if it said."""

    def __init__(self, message: str, *, error: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.error = error


class EventReaderProcess:
    """One child process reading the events of one block range (see the module docstring). Use as an async
    context manager, or call :meth:`close`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        self._used = False
        self.cpu_s: float | None = None  # the child's CPU-seconds for the request, once it is done
        self._done = False
        self._ready = False

    @classmethod
    async def start(cls) -> EventReaderProcess:
        """Start the child with this interpreter; it waits for :meth:`events`' request."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=_STREAM_LIMIT)
        return cls(process)

    async def ready(self) -> None:
        """Wait until the child has started: its imports are done and it waits for the request. Raises
        :class:`EventReaderError` if it died first."""
        await self._wait_ready("its start-up")

    async def _wait_ready(self, what: str) -> None:
        if self._ready:
            return
        kind, body = await self._read_frame(what)
        if kind != ord("R") or body:
            raise EventReaderError(f"the event reader process sent a {chr(kind)!r} frame before it said it was ready")
        self._ready = True

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it ended (negative: killed by that signal)."""
        return self._process.returncode

    async def __aenter__(self) -> EventReaderProcess:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def events(self, environment: Mapping[str, Any], channel: str, chaincode: str, first_block: int,
                     last_block: int, *, identity: str = "service") -> AsyncIterator[list[EventTuple]]:
        """The events of ``chaincode`` in blocks ``first_block``..``last_block`` of ``channel``, read by the child
        as ``identity`` of the devnet ``environment`` (``gx devnet env --json``); one list per frame, in order."""
        if self._used:
            raise RuntimeError("an EventReaderProcess reads one block range; start another for the next")
        self._used = True
        what = f"blocks {first_block}..{last_block} of channel {channel}"
        request = {"environment": dict(environment), "identity": identity, "channel": channel,
                   "chaincode": chaincode, "first_block": first_block, "last_block": last_block}
        stdin = self._process.stdin
        assert stdin is not None
        try:
            await self._wait_ready(what)
            stdin.write(json.dumps(request).encode() + b"\n")
            await stdin.drain()
            stdin.close()
            while True:
                kind, body = await self._read_frame(what)
                if kind == ord("E"):
                    yield cast(list[EventTuple], marshal.loads(body))
                elif kind == ord("D"):
                    self.cpu_s = float(json.loads(body)["cpu_s"])
                    self._done = True
                    return
                elif kind == ord("X"):
                    said = json.loads(body)
                    raise EventReaderError(f"the event reader process failed reading {what}: {said['message']}",
                                           error=said.get("error"), hint=said.get("hint"))
                else:
                    raise EventReaderError(f"the event reader process sent an unknown frame {kind!r} reading {what}")
        except (BrokenPipeError, ConnectionResetError):
            raise await self._died(what) from None
        finally:
            if not self._done:
                await self.close()

    async def _read_frame(self, what: str) -> tuple[int, bytes]:
        """The child's next frame: its kind byte and body. A child that ended first is :meth:`_died`'s error."""
        stdout = self._process.stdout
        assert stdout is not None
        try:
            length, kind = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
            return kind, await stdout.readexactly(length)
        except asyncio.IncompleteReadError:
            raise await self._died(what) from None

    async def _died(self, what: str) -> EventReaderError:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), 5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 1)
        tail = "\n".join(self._stderr) or "(nothing on stderr)"
        return EventReaderError(f"the event reader process ended (exit code {self._process.returncode}) before the "
                                f"end of {what}; its stderr ends with:\n{tail}")

    async def _drain_stderr(self) -> None:
        stderr = self._process.stderr
        assert stderr is not None
        while line := await stderr.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())

    async def close(self) -> None:
        """Reap the child: one that sent all it was asked for is given a few seconds to exit; otherwise, or then,
        it is killed."""
        if self._done and self._process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), 5)
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        await self._process.wait()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._stderr_task, 1)


# --- the child ------------------------------------------------------------------------------------------------

def _write_frame(out: BinaryIO, kind: bytes, body: bytes) -> None:
    out.write(_HEADER.pack(len(body), kind[0]))
    out.write(body)
    out.flush()


async def _read_and_send(request: Mapping[str, Any], out: BinaryIO) -> None:
    cpu_started = time.process_time()
    chaincode, last_block = request["chaincode"], request["last_block"]
    blocks = events = 0
    rows: list[EventTuple] = []
    async with Gateway.from_environment(dict(request["environment"]), request["identity"]) as gateway:
        async for block in gateway.network(request["channel"]).blocks(request["first_block"], last_block):
            blocks += 1
            rows += event_tuples_in_block(block, chaincode)
            if len(rows) >= CHUNK_EVENTS:
                events += len(rows)
                _write_frame(out, b"E", marshal.dumps(rows))
                rows = []
    if rows:
        events += len(rows)
        _write_frame(out, b"E", marshal.dumps(rows))
    _write_frame(out, b"D", json.dumps({"blocks": blocks, "events": events,
                                                  "cpu_s": time.process_time() - cpu_started}).encode())


def main() -> int:
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the frames
    with contextlib.suppress(OSError):
        import fcntl

        fcntl.fcntl(out.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    try:
        _write_frame(out, b"R", b"")
    except BrokenPipeError:
        return 0  # the parent went away before asking
    line = sys.stdin.buffer.readline()
    if not line:
        return 0  # the parent went away before asking
    try:
        asyncio.run(_read_and_send(json.loads(line), out))
    except BrokenPipeError:
        return 1
    except Exception as exc:
        with contextlib.suppress(BrokenPipeError):
            _write_frame(out, b"X", json.dumps({
                "error": type(exc).__name__, "message": exc.message if isinstance(exc, GxError) else repr(exc),
                "hint": exc.hint if isinstance(exc, GxError) else None}).encode())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
