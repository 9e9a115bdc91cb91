"""Long polling with getUpdates that never dies: network and server errors back off and retry."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.exceptions import (
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import Update
from loguru import logger

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "channel_post"]
BACKOFF_CAP = 30.0


async def poll(
    bot: Bot, accept: Callable[[Update], Awaitable[None]], *, timeout: float, stop: asyncio.Event
) -> None:
    """Fetch updates until `stop` is set; on stop, confirm what was accepted."""
    offset: int | None = None
    failures = 0
    while not stop.is_set():
        try:
            updates = await _until_stopped(
                bot.get_updates(
                    offset=offset,
                    timeout=int(timeout),
                    allowed_updates=ALLOWED_UPDATES,
                    request_timeout=int(timeout) + 10,
                ),
                stop,
            )
        except (TelegramNetworkError, TelegramServerError, TelegramConflictError) as exc:
            failures += 1
            delay = min(BACKOFF_CAP, 0.5 * 2 ** min(failures, 8)) * random.uniform(0.5, 1)
            logger.warning(
                "polling failed ({}: {}); retry in {:.1f}s", type(exc).__name__, exc.message, delay
            )
            await _nap(delay, stop)
            continue
        except TelegramRetryAfter as exc:
            logger.warning("polling asked to wait {}s (429)", exc.retry_after)
            await _nap(exc.retry_after, stop)
            continue
        if updates is None:
            break
        if failures:
            logger.info("polling is back after {} failure(s)", failures)
            failures = 0
        for update in updates:
            offset = update.update_id + 1
            await accept(update)
    await _confirm(bot, offset)


async def _until_stopped(
    call: Awaitable[list[Update]],
    stop: asyncio.Event,
) -> list[Update] | None:
    """The call's result, or None when `stop` was set first (the call is cancelled)."""
    work = asyncio.ensure_future(call)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if work in done:
        stopper.cancel()
        return work.result()
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    return None


async def _nap(seconds: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return


async def _confirm(bot: Bot, offset: int | None) -> None:
    """Tell Telegram every accepted update is taken, so none comes back after a restart."""
    if offset is None:
        return
    try:
        await bot.get_updates(offset=offset, timeout=0, limit=1, request_timeout=5)
    except Exception as exc:
        logger.warning("could not confirm updates below {}: {}", offset, exc)
