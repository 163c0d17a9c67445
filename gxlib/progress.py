"""Progress on long operations: what is happening, for how long, and a clear timeout.

Messages go to stderr so that ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console

from gxlib.errors import GxError

T = TypeVar("T")


class WaitTimeout(GxError):
    """A wait ran out of time; the message says what was awaited and the last thing seen."""

    def __init__(self, what: str, timeout_s: float, last_state: str | None) -> None:
        detail = f" (last seen: {last_state})" if last_state else ""
        super().__init__(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")
        self.what = what
        self.timeout_s = timeout_s
        self.last_state = last_state


class Progress:
    """Prints one line when a task starts and one when it ends, with a heartbeat while it runs."""

    def __init__(self, console: Console | None = None, *, heartbeat_s: float = 15.0, quiet: bool = False):
        self.console = console or Console(stderr=True, highlight=False)
        self.heartbeat_s = heartbeat_s
        self.quiet = quiet

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)

    @contextmanager
    def task(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        self.info(f"[bold]→[/] {what} …")
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_s):
                self.info(f"  … still {what} ({time.monotonic() - started:.0f}s)")

        ticker = threading.Thread(target=beat, daemon=True)
        ticker.start()
        try:
            yield
        except BaseException:
            self.info(f"[red]✗[/] {what} failed after {time.monotonic() - started:.1f}s")
            raise
        finally:
            stop.set()
            ticker.join()
        self.info(f"[green]✓[/] {what} ({time.monotonic() - started:.1f}s)")

    def wait_until(
        self,
        what: str,
        probe: Callable[[], tuple[bool, str | None]],
        *,
        timeout_s: float,
        interval_s: float = 0.25,
    ) -> None:
        """Poll ``probe`` until it returns ``(True, _)``; its second value describes the current state."""
        deadline = time.monotonic() + timeout_s
        last: str | None = None
        with self.task(f"waiting for {what}"):
            while True:
                ok, last = probe()
                if ok:
                    return
                if time.monotonic() >= deadline:
                    raise WaitTimeout(what, timeout_s, last)
                time.sleep(interval_s)
