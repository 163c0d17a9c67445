"""The circuit breaker's states, with a clock that moves only when told."""

from __future__ import annotations

import random

from gxlib.backend.backoff import backoff_delay
from gxlib.backend.breaker import BreakerState, CircuitBreaker
from tests.unit.backend.helpers import FakeMonotonic


def test_closed_open_half_open_closed() -> None:
    clock = FakeMonotonic()
    seen: list[BreakerState] = []
    breaker = CircuitBreaker(3, 10, clock=clock, on_change=seen.append)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.try_acquire() and breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.try_acquire()
    clock.advance(9.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_acquire() and not breaker.try_acquire()  # exactly one probe
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert seen == [BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    assert [s.gauge_value for s in BreakerState] == [0.0, 0.5, 1.0]


def test_a_success_resets_the_consecutive_failure_count() -> None:
    breaker = CircuitBreaker(2, 1, clock=FakeMonotonic())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = FakeMonotonic()
    breaker = CircuitBreaker(1, 5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(4)
    assert breaker.state is BreakerState.OPEN


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        delays = [backoff_delay(attempt, 0.5, 8, rng) for _ in range(200)]
        ceiling = min(8, 0.5 * 2 ** (attempt - 1))
        assert all(0.25 <= d <= ceiling for d in delays)
        if attempt >= 3:
            assert len(set(delays)) > 100  # jittered, not a fixed schedule


def test_a_late_success_of_a_call_sent_before_the_outage_does_not_close_an_open_breaker() -> None:
    clock = FakeMonotonic()
    breaker = CircuitBreaker(2, 10, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    breaker.record_success()  # a transaction in flight since before the outage commits late
    assert breaker.state is BreakerState.OPEN and not breaker.try_acquire()
    clock.advance(10)
    assert breaker.try_acquire()  # the half-open probe, and only its success closes the breaker
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_passed_probe_keeps_the_breaker_half_open_until_a_trial_call_succeeds() -> None:
    clock = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: clock[0])
    breaker.record_failure()
    clock[0] += 10.0
    assert breaker.try_acquire()  # the probe
    breaker.probe_succeeded()
    assert breaker.state is BreakerState.HALF_OPEN  # the gateway answered; the path behind it is not proven yet
    assert breaker.try_acquire_trial() and not breaker.try_acquire_trial()  # exactly one trial call
    breaker.record_failure()  # the trial failed (e.g. the orderer is down): open again
    assert breaker.state is BreakerState.OPEN and not breaker.try_acquire_trial()
    clock[0] += 10.0
    assert breaker.try_acquire()
    breaker.probe_succeeded()
    assert breaker.try_acquire_trial()
    breaker.release_trial()  # the trial told nothing (a lost lease): another call may be the trial
    assert breaker.try_acquire_trial()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and not breaker.try_acquire_trial()
