"""One circuit breaker per source: after repeated failures stop asking, so a hung source
costs nobody its deadline; probe it in the background and use it again once it answers.

States: closed (ask), open (answer UNAVAILABLE at once), probing (open, one background probe
in flight). `failure_threshold` consecutive failures open it; after `reset_after_s` the
record service probes; a probe that succeeds closes it, one that fails re-opens it.

A named breaker publishes its state as `mash_hub_source_circuit_open{source}` (1 while open
or probing, 0 while closed) on every change, so an operator's alert sees a source the hub
has stopped asking without waiting for reads to fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Gauge

from ..telemetry.metrics import GAUGE_MODE

CIRCUIT_OPEN = Gauge(
    "mash_hub_source_circuit_open",
    "1 while the hub has stopped asking this source (circuit open or probing), else 0",
    ["source"],
    multiprocess_mode=GAUGE_MODE,
)

CLOSED, OPEN, PROBING = "closed", "open", "probing"


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    reset_after_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    failures: int = 0
    opened_at: float = field(default=0.0)
    # The source's name (a `Source` value) when the state is published; never personal data.
    source: str | None = None

    def __post_init__(self) -> None:
        self._publish()

    def _publish(self) -> None:
        if self.source is not None:
            CIRCUIT_OPEN.labels(self.source).set(0 if self.state == CLOSED else 1)

    def allows(self) -> bool:
        """Ask the source now?"""
        return self.state == CLOSED

    def wants_probe(self) -> bool:
        """Open long enough that a background probe should start (at most one at a time)."""
        if self.state == OPEN and self.clock() - self.opened_at >= self.reset_after_s:
            self.state = PROBING
            return True
        return False

    def succeeded(self) -> None:
        self.state, self.failures = CLOSED, 0
        self._publish()

    def failed(self) -> None:
        self.failures += 1
        if self.state == PROBING or self.failures >= self.failure_threshold:
            self.state, self.opened_at = OPEN, self.clock()
            self._publish()
