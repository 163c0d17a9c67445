"""Circuit breaker around the Fabric Gateway (SPEC §3.2).

closed → open after ``failure_threshold`` consecutive transport failures → half-open after ``cooldown_s``
(one probe allowed: :meth:`try_acquire` grants it once) → open again when the probe fails; when it succeeds
(:meth:`probe_succeeded`) the breaker stays half-open and lets one trial call through
(:meth:`try_acquire_trial`): its success closes the breaker, its failure opens it again.

Why a trial and not the probe alone: the probe (a commit-status query) only shows that the Gateway peer answers.
With the orderer down the peer still answers, so a breaker closed by the probe alone let a whole batch fail
once per cool-down, and the gauge's brief closes kept FabricCircuitBreakerOpen (``min_over_time(...) > 0``) from
ever firing. Half-open (0.5) until a real call succeeds keeps the gauge above 0 through such an outage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum


class BreakerState(Enum):
    CLOSED = 0.0
    HALF_OPEN = 0.5
    OPEN = 1.0

    @property
    def gauge_value(self) -> float:
        """The value of the ``circuit_breaker_state`` gauge (SPEC §4)."""
        return float(self.value)


class CircuitBreaker:
    def __init__(self, failure_threshold: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[BreakerState], None] | None = None) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._listeners: list[Callable[[BreakerState], None]] = [on_change] if on_change else []
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._trial_allowed = False  # half-open, the probe succeeded: one call may go as the trial
        self._trial_in_flight = False
        for listener in self._listeners:
            listener(self._state)

    def add_listener(self, listener: Callable[[BreakerState], None]) -> None:
        """Call ``listener(state)`` now and on every state change (e.g. to set the ``circuit_breaker_state``
        gauge)."""
        self._listeners.append(listener)
        listener(self._state)

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def _set(self, state: BreakerState) -> None:
        if state is not BreakerState.HALF_OPEN:
            self._trial_allowed = self._trial_in_flight = False
        if state is not self._state:
            self._state = state
            for listener in self._listeners:
                listener(state)

    def _maybe_half_open(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            self._set(BreakerState.HALF_OPEN)
            self._probe_in_flight = False
            self._trial_allowed = self._trial_in_flight = False

    def try_acquire(self) -> bool:
        """Permission for one call; in half-open exactly one caller (the probe) gets it."""
        with self._lock:
            self._maybe_half_open()
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            return False

    def probe_succeeded(self) -> None:
        """The half-open probe reached the gateway: stay half-open and allow one trial call."""
        with self._lock:
            self._maybe_half_open()
            self._probe_in_flight = False
            if self._state is BreakerState.HALF_OPEN:
                self._trial_allowed = True

    def try_acquire_trial(self) -> bool:
        """Permission for the trial call (half-open, after a successful probe); granted once until it ends."""
        with self._lock:
            self._maybe_half_open()
            if self._state is BreakerState.HALF_OPEN and self._trial_allowed and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    @property
    def trial_in_flight(self) -> bool:
        return self._trial_in_flight

    def release_trial(self) -> None:
        """The trial call ended without telling anything about the gateway: another call may be the trial."""
        with self._lock:
            self._trial_in_flight = False

    def record_success(self) -> None:
        """A call reached the gateway. Closed: the failure count restarts; half-open: the trial call (or, with nothing
        to try, the probe) closes the breaker. Open: ignored — a call sent before the breaker opened says nothing
        about the gateway since; only half-open may close it (else one late success would reopen the flood of calls
        the outage fails)."""
        with self._lock:
            self._maybe_half_open()
            if self._state is BreakerState.OPEN:
                return
            self._failures = 0
            self._probe_in_flight = False
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or (
                    self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold):
                self._opened_at = self._clock()
                self._probe_in_flight = False
                self._set(BreakerState.OPEN)

    def release(self) -> None:
        """A permitted call ended without telling anything about the gateway (e.g. a lease was lost)."""
        with self._lock:
            self._probe_in_flight = False
