"""The running engine's upkeep: timers fire, idle conversations go, stats are logged."""

from __future__ import annotations

import asyncio

from loguru import logger

from engine.upkeep import run_upkeep
from tests.helpers import command, make_bot


async def test_upkeep_sweeps_idle_conversations_and_logs_memory_and_count() -> None:
    bot = make_bot()
    await bot.engine.handle(command(777, "/start"))
    await bot.engine.handle(command(778, "/start"))
    bot.clock.now += 31 * 60
    await bot.engine.handle(command(778, "/help"))

    logged: list[str] = []
    stats_seen = asyncio.Event()

    def sink(message: object) -> None:
        logged.append(str(message).strip())
        if "stats memory_mb=" in str(message):
            stats_seen.set()

    sink_id = logger.add(sink, level="INFO", format="{message}")
    stop = asyncio.Event()
    task = asyncio.create_task(run_upkeep(bot.engine, sweep_every=0, stats_every=0, stop=stop))
    try:
        await asyncio.wait_for(stats_seen.wait(), timeout=5)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        logger.remove(sink_id)

    assert await bot.engine.store.count() == 1
    assert any(line.startswith("sweep removed=1 ") for line in logged)
    assert any(
        line.startswith("stats memory_mb=") and line.endswith("conversations=1 queued=0")
        for line in logged
    )
