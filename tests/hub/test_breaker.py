"""The per-source circuit breaker."""

from __future__ import annotations

from hub.breaker import CLOSED, OPEN, PROBING, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=Clock())
    breaker.failed()
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    breaker.failed()
    assert breaker.allows()
    breaker.failed()
    assert breaker.state == OPEN and not breaker.allows()


def test_open_breaker_asks_for_one_probe_after_the_reset_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=10, clock=clock)
    breaker.failed()
    clock.now = 9.9
    assert not breaker.wants_probe()
    clock.now = 10.0
    assert breaker.wants_probe() and breaker.state == PROBING
    assert not breaker.wants_probe(), "one probe at a time"
    assert not breaker.allows(), "requests still fail fast while the probe runs"


def test_probe_success_closes_and_probe_failure_reopens_for_another_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=10, clock=clock)
    breaker.failed()
    clock.now = 10
    assert breaker.wants_probe()
    breaker.failed()
    assert breaker.state == OPEN and breaker.opened_at == 10
    clock.now = 20
    assert breaker.wants_probe()
    breaker.succeeded()
    assert breaker.state == CLOSED and breaker.allows()
