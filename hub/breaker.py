"""One circuit breaker per source: after repeated failures stop asking, so a hung source
costs nobody its deadline; probe it in the background and use it again once it answers.

States: closed (ask), open (answer UNAVAILABLE at once), probing (open, one background probe
in flight). `failure_threshold` consecutive failures open it; after `reset_after_s` the
record service probes; a probe that succeeds closes it, one that fails re-opens it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

CLOSED, OPEN, PROBING = "closed", "open", "probing"


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    reset_after_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    failures: int = 0
    opened_at: float = field(default=0.0)

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

    def failed(self) -> None:
        self.failures += 1
        if self.state == PROBING or self.failures >= self.failure_threshold:
            self.state, self.opened_at = OPEN, self.clock()
