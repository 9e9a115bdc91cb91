"""The engine: conversations of every user, one event at a time per user.

`Engine.handle` takes an event, loads the user's conversation, lets a `Turn`
decide, and saves the result. Events of one chat wait for each other; other
chats never do. Timers (delayed transitions) sit in one heap and idle
conversations are swept on a period: there is no task or timer per user.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import resource
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from transitions import Machine

from engine.actions import AnswerButton, Channel, SendMessage
from engine.backend import BackendPort
from engine.conversation import Conversation
from engine.errors import RecipientGone
from engine.events import Event
from engine.machine import build_machine
from engine.render import reply_values, text_source
from engine.schema import FlowSpec, StateSpec
from engine.storage import ConversationStore
from engine.turn import Turn

DEFAULT_ERROR = "Sorry, something went wrong. Please try again."


@dataclass(slots=True)
class _ChatLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Engine:
    def __init__(
        self,
        flows: Mapping[str, FlowSpec],
        *,
        main_flow: str,
        store: ConversationStore,
        backend: BackendPort,
        channel: Channel,
        expire_after: float = 1800,
        admin_ids: frozenset[int] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.flows = dict(flows)
        self.main_flow = main_flow
        self.store = store
        self.backend = backend
        self.channel = channel
        self.expire_after = expire_after
        self.admin_ids = frozenset(admin_ids)
        self.clock = clock
        self.machines: dict[str, Machine] = {
            name: build_machine(spec) for name, spec in self.flows.items()
        }
        self.reply_values = reply_values(self.flows)
        self.started_at = clock()
        self._locks: dict[int, _ChatLock] = {}
        self._timers: list[tuple[float, int, int, int, str]] = []
        self._timer_seq = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- events -------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Take one event; events of the same chat are taken one at a time, in order."""
        entry = self._locks.get(event.chat_id)
        if entry is None:
            entry = self._locks[event.chat_id] = _ChatLock()
        entry.users += 1
        try:
            async with entry.lock:
                await self._handle(event)
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[event.chat_id]

    async def _handle(self, event: Event) -> None:
        now = self.clock()
        conversation = await self.store.load(event.chat_id)
        if conversation is not None and conversation.expires_at < now:
            logger.bind(chat=event.chat_id).info("conversation expired while idle; starting anew")
            conversation = None
        if conversation is not None and not self.still_fits(conversation):
            logger.bind(chat=event.chat_id, flow=conversation.flow).info(
                "the flow changed under this conversation (state {!r} is gone); starting anew",
                conversation.state,
            )
            conversation = None
        if event.kind == "timer" and (conversation is None or conversation.step != event.step):
            return

        fresh = conversation is None
        if conversation is None:
            conversation = self.new_conversation(event.chat_id)
        turn = Turn(self, conversation, event)
        try:
            changed = await (turn.begin() if fresh else turn.process())
        except RecipientGone as exc:
            logger.bind(chat=event.chat_id).warning(
                "user cannot be reached ({}); conversation ended", exc
            )
            await self.store.delete(event.chat_id)
            return
        except Exception:
            logger.bind(
                chat=event.chat_id,
                flow=conversation.flow,
                state=conversation.state,
                kind=event.kind,
            ).exception("event failed; conversation kept as it was")
            await self._apologise(turn)
            return
        if fresh or changed:
            conversation.last_activity = now
            conversation.expires_at = now + self.lifetime(conversation)
            await self.store.save(conversation)

    def still_fits(self, conversation: Conversation) -> bool:
        """Do the conversation's flows and states still exist? Flows change without a deploy."""
        frames = [
            *((f.flow, f.state) for f in conversation.parents),
            (conversation.flow, conversation.state),
        ]
        return all(
            flow in self.flows and state in self.flows[flow].states for flow, state in frames
        )

    def new_conversation(self, chat_id: int) -> Conversation:
        flow = self.flows[self.main_flow]
        logger.bind(chat=chat_id, flow=flow.flow).info("conversation started")
        return Conversation(
            chat_id=chat_id,
            flow=flow.flow,
            version=flow.version,
            state=flow.start,
            language=flow.languages[0],
        )

    def lifetime(self, conversation: Conversation) -> float:
        root = conversation.parents[0].flow if conversation.parents else conversation.flow
        return self.flows[root].expire_after or self.expire_after

    async def _apologise(self, turn: Turn) -> None:
        """The user hears the flow's error text; a failure to say it is only logged."""
        try:
            await turn.answer()
            flow, error = turn.inherited("error")
            text = DEFAULT_ERROR
            if error is not None:
                text = text_source(error, flow, turn.conversation.language)
            await self.channel.deliver(SendMessage(turn.conversation.chat_id, text))
        except Exception:
            logger.bind(chat=turn.conversation.chat_id).exception("could not send the error text")

    # -- timers -------------------------------------------------------------------------

    def schedule_timers(self, conversation: Conversation, state: StateSpec) -> None:
        now = self.clock()
        for transition in state.on:
            if transition.after is not None:
                heapq.heappush(
                    self._timers,
                    (
                        now + transition.after,
                        next(self._timer_seq),
                        conversation.chat_id,
                        conversation.step,
                        str(transition.after),
                    ),
                )

    def next_timer(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    async def fire_due_timers(self) -> int:
        """Deliver every timer that is due; a timer whose state was left is ignored."""
        now, fired = self.clock(), 0
        while self._timers and self._timers[0][0] <= now:
            _, _, chat_id, step, value = heapq.heappop(self._timers)
            await self.handle(Event(chat_id, "timer", value=value, step=step))
            fired += 1
        return fired

    # -- upkeep -------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Forget idle conversations; returns how many."""
        started = time.perf_counter()
        removed = await self.store.sweep(self.clock())
        logger.info("sweep removed={} ms={:.1f}", removed, (time.perf_counter() - started) * 1000)
        return removed

    async def status(self) -> dict[str, Any]:
        backend = await self.backend.status()
        uptime = int(self.clock() - self.started_at)
        return {
            "backend": ", ".join(f"{k}: {v}" for k, v in backend["services"].items()) or "-",
            "queued": backend["queued"],
            "conversations": await self.store.count(),
            "uptime": f"{uptime // 3600}h {uptime % 3600 // 60}m {uptime % 60}s",
            "memory_mb": round(memory_mb(), 1),
        }

    def spawn(
        self,
        work: Coroutine[Any, Any, Any],
        log: Any,
        verb: str,
        name: str | None,
    ) -> None:
        """Run `work` without waiting for it; its failure is logged, never raised."""

        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("{} {} in the background failed: {}", verb, name, exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (within `timeout`) for background work started by flows."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


def memory_mb() -> float:
    """Resident memory of this process in MB (current, from /proc; peak where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


__all__ = ["AnswerButton", "Engine", "memory_mb"]
