"""Background upkeep of a running engine: timers, the idle sweep, kept calls, the stats line."""

from __future__ import annotations

import asyncio
import contextlib

from loguru import logger

from engine.config import Settings
from engine.runtime import Engine, memory_mb

MAX_TIMER_NAP = 1.0  # seconds; a timer scheduled meanwhile is noticed within this


async def run_upkeep(
    engine: Engine,
    *,
    sweep_every: float,
    stats_every: float,
    stop: asyncio.Event,
    deliver_every: float = 15.0,
) -> None:
    """Until `stop` is set: fire due timers, sweep idle conversations, deliver the outbox,
    and log one stats line per period."""
    now = engine.clock()
    next_sweep, next_stats, next_delivery = now + sweep_every, now + stats_every, now
    while not stop.is_set():
        now = engine.clock()
        await engine.fire_due_timers()
        if now >= next_sweep:
            await engine.sweep()
            next_sweep = now + sweep_every
        if now >= next_delivery:
            await _deliver(engine)
            next_delivery = now + deliver_every
        if now >= next_stats:
            await log_stats(engine)
            next_stats = now + stats_every
        due = min(
            t
            for t in (engine.next_timer(), next_sweep, next_stats, next_delivery)
            if t is not None
        )
        nap = min(max(due - engine.clock(), 0.01), MAX_TIMER_NAP)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=nap)


def start_upkeep(engine: Engine, settings: Settings, stop: asyncio.Event) -> asyncio.Task[None]:
    """The upkeep loop as a task, on the periods config.yaml gives."""
    return asyncio.create_task(
        run_upkeep(
            engine,
            sweep_every=settings.sweep_every,
            stats_every=settings.stats_every,
            stop=stop,
            deliver_every=settings.backend.outbox.retry_every,
        )
    )


async def _deliver(engine: Engine) -> None:
    try:
        await engine.backend.deliver_queued()
    except Exception:
        logger.exception("outbox delivery failed; trying again next period")


async def log_stats(engine: Engine) -> None:
    status = await engine.backend.status()
    logger.info(
        "stats memory_mb={:.1f} conversations={} queued={}",
        memory_mb(),
        await engine.store.count(),
        status["queued"],
    )
