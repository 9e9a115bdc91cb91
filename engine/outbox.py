"""The outbox port: calls that must not be lost, kept until their service takes them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Parcel:
    """One kept call: its endpoint, its parameters and the key that makes it unique."""

    id: int
    endpoint: str
    params: dict[str, Any]
    key: str
    attempts: int


class Outbox(Protocol):
    async def put(self, endpoint: str, params: dict[str, Any], key: str) -> None:
        """Keep a call; the same key kept twice is kept once."""
        ...

    async def pending(self, limit: int = 100) -> list[Parcel]:
        """Kept calls not delivered yet, oldest first."""
        ...

    async def delivered(self, parcel: Parcel) -> None: ...

    async def refused(self, parcel: Parcel, reason: str) -> None:
        """The service refused it for good (a 4xx): set aside, never retried."""
        ...

    async def attempted(self, parcel: Parcel) -> None: ...

    async def depth(self) -> int: ...

    async def close(self) -> None: ...


class MemoryOutbox:
    """An `Outbox` in memory: for tests and replays; not durable across a restart."""

    def __init__(self) -> None:
        self._parcels: dict[str, Parcel] = {}
        self._state: dict[str, str] = {}
        self._next = 1

    async def put(self, endpoint: str, params: dict[str, Any], key: str) -> None:
        if key not in self._parcels:
            self._parcels[key] = Parcel(self._next, endpoint, dict(params), key, 0)
            self._state[key] = "queued"
            self._next += 1

    async def pending(self, limit: int = 100) -> list[Parcel]:
        queued = [p for k, p in self._parcels.items() if self._state[k] == "queued"]
        return sorted(queued, key=lambda p: p.id)[:limit]

    async def delivered(self, parcel: Parcel) -> None:
        self._state[parcel.key] = "delivered"

    async def refused(self, parcel: Parcel, reason: str) -> None:
        self._state[parcel.key] = "refused"

    async def attempted(self, parcel: Parcel) -> None:
        kept = self._parcels[parcel.key]
        self._parcels[parcel.key] = replace(kept, attempts=kept.attempts + 1)

    async def depth(self) -> int:
        return sum(1 for state in self._state.values() if state == "queued")

    async def close(self) -> None:
        return None
