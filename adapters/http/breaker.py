"""A circuit breaker per service: fail fast while a service is down, probe it once, recover.

    closed     every call goes through; consecutive failures are counted
    open       reached after `threshold` consecutive failures; calls fail at once
               until `cooldown` seconds have passed
    half-open  reached when the cool-down is over: exactly one caller (the probe) goes
               through, all others still fail fast; the probe's success closes the
               circuit, its failure opens it again for another cool-down

We measured aiobreaker and purgatory letting every concurrent caller through
when half-open, and pybreaker serialising all calls, hence this small one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from loguru import logger


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitOpen(Exception):
    """The call was not made: the service's circuit is open (or its one probe is out)."""


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.state = Circuit.CLOSED
        self.failures = 0
        self._opened_at = 0.0
        self._probe_out = False

    def rejects_now(self) -> bool:
        """Would a call fail fast right now? (Open and cooling down; no state changes.)"""
        return self.state is Circuit.OPEN and self.clock() - self._opened_at < self.cooldown

    def admit(self) -> None:
        """Let a call through, or raise CircuitOpen; call `success`/`failure` after it."""
        if self.state is Circuit.OPEN:
            if self.clock() - self._opened_at < self.cooldown:
                raise CircuitOpen(f"{self.name}: circuit open")
            self._change(Circuit.HALF_OPEN)
        if self.state is Circuit.HALF_OPEN:
            if self._probe_out:
                raise CircuitOpen(f"{self.name}: circuit half-open, probe in flight")
            self._probe_out = True

    def success(self) -> None:
        self.failures = 0
        self._probe_out = False
        if self.state is not Circuit.CLOSED:
            self._change(Circuit.CLOSED)

    def failure(self) -> None:
        self.failures += 1
        self._probe_out = False
        if self.state is Circuit.HALF_OPEN or self.failures >= self.threshold:
            self._opened_at = self.clock()
            if self.state is not Circuit.OPEN:
                self._change(Circuit.OPEN)

    def release(self) -> None:
        """The admitted call ended with neither verdict (cancelled, or a 4xx)."""
        self._probe_out = False

    def _change(self, state: Circuit) -> None:
        logger.info(
            "circuit {} {} -> {} (consecutive failures: {})",
            self.name,
            self.state.value,
            state.value,
            self.failures,
        )
        self.state = state
