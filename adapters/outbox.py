"""The outbox in SQLite: kept backend calls survive a restart until they are delivered."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiosqlite

from adapters.sqlite import open_sqlite
from engine.outbox import Parcel

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    params TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued',
    reason TEXT
)
"""


class SqliteOutbox:
    """An `Outbox` in one SQLite file (or `:memory:`); opened lazily on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None

    async def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            self._db = await open_sqlite(self.path)
            await self._db.execute(SCHEMA)
            await self._db.commit()
        return self._db

    async def put(self, endpoint: str, params: dict[str, Any], key: str) -> None:
        db = await self._connection()
        await db.execute(
            "INSERT OR IGNORE INTO outbox (endpoint, params, key, created) VALUES (?, ?, ?, ?)",
            (endpoint, json.dumps(params, ensure_ascii=False), key, time.time()),
        )
        await db.commit()

    async def pending(self, limit: int = 100) -> list[Parcel]:
        db = await self._connection()
        async with db.execute(
            "SELECT id, endpoint, params, key, attempts FROM outbox "
            "WHERE state = 'queued' ORDER BY id LIMIT ?",
            (limit,),
        ) as rows:
            return [Parcel(r[0], r[1], json.loads(r[2]), r[3], r[4]) async for r in rows]

    async def delivered(self, parcel: Parcel) -> None:
        await self._set(parcel, "delivered", None)

    async def refused(self, parcel: Parcel, reason: str) -> None:
        await self._set(parcel, "refused", reason)

    async def attempted(self, parcel: Parcel) -> None:
        db = await self._connection()
        await db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (parcel.id,))
        await db.commit()

    async def depth(self) -> int:
        db = await self._connection()
        async with db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'queued'") as rows:
            row = await rows.fetchone()
        return int(row[0]) if row else 0

    async def _set(self, parcel: Parcel, state: str, reason: str | None) -> None:
        db = await self._connection()
        await db.execute(
            "UPDATE outbox SET state = ?, reason = ?, attempts = attempts + 1 WHERE id = ?",
            (state, reason, parcel.id),
        )
        await db.commit()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
