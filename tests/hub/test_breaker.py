"""The per-source circuit breaker."""

from __future__ import annotations

from prometheus_client import REGISTRY

from hub.reading.breaker import CLOSED, OPEN, PROBING, CircuitBreaker


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


def circuit_open(source: str) -> float | None:
    return REGISTRY.get_sample_value("mash_hub_source_circuit_open", {"source": source})


def test_named_breaker_publishes_open_while_open_or_probing_and_closed_once_closed() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=10, clock=clock, source="TEST_A")
    assert circuit_open("TEST_A") == 0
    breaker.failed()
    assert circuit_open("TEST_A") == 0, "one failure below the threshold keeps it closed"
    breaker.failed()
    assert circuit_open("TEST_A") == 1
    clock.now = 10
    assert breaker.wants_probe()
    assert circuit_open("TEST_A") == 1, "probing: requests still refused"
    breaker.succeeded()
    assert circuit_open("TEST_A") == 0


def test_unnamed_breaker_publishes_nothing() -> None:
    before = {s.labels.get("source") for m in REGISTRY.collect() for s in m.samples}
    CircuitBreaker(failure_threshold=1).failed()
    after = {s.labels.get("source") for m in REGISTRY.collect() for s in m.samples}
    assert after == before
