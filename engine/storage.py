"""Where conversations live between events, behind one small interface.

A store keeps serialised conversations (`Conversation.dump`), so that what
works in memory works the same in SQLite or Redis. Idle conversations are
removed by `sweep`, run on a period by the runtime: no timer per conversation.
"""

from __future__ import annotations

from typing import Protocol

from engine.conversation import Conversation


class ConversationStore(Protocol):
    async def load(self, chat_id: int) -> Conversation | None: ...

    async def save(self, conversation: Conversation) -> None: ...

    async def delete(self, chat_id: int) -> None: ...

    async def sweep(self, now: float) -> int:
        """Forget every conversation whose `expires_at` is before `now`; return how many."""
        ...

    async def count(self) -> int: ...

    async def close(self) -> None: ...


class MemoryStore:
    """Conversations in a dict, each as (expires_at, JSON bytes): about 0.5 KB when idle."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[float, bytes]] = {}

    async def load(self, chat_id: int) -> Conversation | None:
        item = self._items.get(chat_id)
        return Conversation.load(item[1]) if item else None

    async def save(self, conversation: Conversation) -> None:
        self._items[conversation.chat_id] = (conversation.expires_at, conversation.dump())

    async def delete(self, chat_id: int) -> None:
        self._items.pop(chat_id, None)

    async def sweep(self, now: float) -> int:
        expired = [key for key, (expires_at, _) in self._items.items() if expires_at < now]
        for key in expired:
            del self._items[key]
        return len(expired)

    async def count(self) -> int:
        return len(self._items)

    async def close(self) -> None:
        return None
