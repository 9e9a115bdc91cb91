"""Opening SQLite through aiosqlite, shared by the outbox and the conversation store."""

from __future__ import annotations

from pathlib import Path

import aiosqlite


async def open_sqlite(path: str) -> aiosqlite.Connection:
    """A connection in WAL mode; `path` may be ':memory:'. Its folder is created."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = aiosqlite.connect(path)
    # aiosqlite's worker thread is not a daemon: a connection left open would keep the
    # interpreter from exiting at all. Closing stays our job; this only bounds a mistake.
    connection._thread.daemon = True
    db = await connection
    await db.execute("PRAGMA journal_mode=WAL")
    return db
