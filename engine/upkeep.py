"""Background upkeep of a running engine: timers, the idle sweep and the stats line."""

from __future__ import annotations

import asyncio
import contextlib

from loguru import logger

from engine.runtime import Engine, memory_mb

MAX_TIMER_NAP = 1.0  # seconds; a timer scheduled meanwhile is noticed within this


async def run_upkeep(
    engine: Engine, *, sweep_every: float, stats_every: float, stop: asyncio.Event
) -> None:
    """Run until `stop` is set: fire due timers, sweep idle conversations, log stats."""
    next_sweep = engine.clock() + sweep_every
    next_stats = engine.clock() + stats_every
    while not stop.is_set():
        now = engine.clock()
        await engine.fire_due_timers()
        if now >= next_sweep:
            await engine.sweep()
            next_sweep = now + sweep_every
        if now >= next_stats:
            await log_stats(engine)
            next_stats = now + stats_every
        due = min(filter(None, (engine.next_timer(), next_sweep, next_stats)))
        nap = min(max(due - engine.clock(), 0.01), MAX_TIMER_NAP)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=nap)


async def log_stats(engine: Engine) -> None:
    logger.info("stats memory_mb={:.1f} conversations={}", memory_mb(), await engine.store.count())
