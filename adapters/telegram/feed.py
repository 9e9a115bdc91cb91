"""Accepted updates on their way to the engine: once each, in order per chat, bounded.

Delivery guarantee: an update is acknowledged to Telegram (the polling offset,
or the webhook's 200) when it is accepted here, before the engine has taken
it, so that one chat's slow backend call never holds back anyone else's
updates. A clean stop (SIGINT, SIGTERM) takes no new updates and finishes the
accepted ones within the grace period. A crash loses the updates accepted but
not yet taken, at most those in flight at that moment; every conversation
stays at its last saved state. The same `update_id` delivered twice is taken
once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from aiogram.types import Update
from loguru import logger

from adapters.telegram.channel import TelegramChannel
from adapters.telegram.convert import PolicyReply, convert
from engine.events import Event
from engine.runtime import Engine

REMEMBERED_UPDATES = 10_000


class UpdateFeed:
    def __init__(
        self,
        engine: Engine,
        channel: TelegramChannel,
        *,
        private_only_text: str,
        max_in_flight: int,
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.private_only_text = private_only_text
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.accepted = 0

    async def accept(self, update: Update) -> None:
        """Take an update for processing; returns once it is queued (waits when too many)."""
        if update.update_id in self._seen:
            logger.debug("update {} delivered again; ignored", update.update_id)
            return
        self._seen[update.update_id] = None
        if len(self._seen) > REMEMBERED_UPDATES:
            self._seen.popitem(last=False)
        await self._slots.acquire()
        self.accepted += 1
        task = asyncio.get_running_loop().create_task(self._take(update))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, update: Update) -> None:
        try:
            item = convert(update, self.private_only_text)
            if isinstance(item, Event):
                if item.callback_id:
                    self.channel.answer_soon(item.callback_id)
                await self.engine.handle(item)
            elif isinstance(item, PolicyReply):
                await self.channel.send(item.chat_id, item.text, None)
            else:
                logger.debug("update {} is not for the bot; ignored", update.update_id)
                if update.callback_query is not None:
                    await self.channel.answer(update.callback_query.id, None)
        except Exception:
            logger.bind(update=update.update_id).exception("update could not be taken")
        finally:
            self._slots.release()

    async def drain(self, timeout: float) -> bool:
        """Wait for accepted updates to finish; False when the grace period ran out."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
        if pending:
            logger.warning(
                "{} update(s) still running after {:.0f}s; stopping without them",
                len(pending),
                timeout,
            )
            for task in pending:
                task.cancel()
        return not pending
