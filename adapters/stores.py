"""Conversation stores beyond memory: SQLite and Redis, chosen by `STORAGE_URL`.

Each keeps the same thing as the memory store, a conversation's JSON blob and
when it expires, so a conversation survives a restart of the bot.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import aiosqlite
import redis.asyncio as redis_asyncio

from adapters.sqlite import open_sqlite
from engine.conversation import Conversation
from engine.errors import ConfigError
from engine.storage import ConversationStore, MemoryStore

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    chat_id INTEGER PRIMARY KEY,
    expires_at REAL NOT NULL,
    blob BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_expiry ON conversations (expires_at);
"""


class SqliteStore:
    """One row per chat; the sweep is one DELETE on an index."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            self._db = await open_sqlite(self.path)
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.executescript(SQLITE_SCHEMA)
            await self._db.commit()
        return self._db

    async def load(self, chat_id: int) -> Conversation | None:
        db = await self._connection()
        async with db.execute(
            "SELECT blob FROM conversations WHERE chat_id = ?", (chat_id,)
        ) as rows:
            row = await rows.fetchone()
        return Conversation.load(row[0]) if row else None

    async def save(self, conversation: Conversation) -> None:
        db = await self._connection()
        await db.execute(
            "INSERT OR REPLACE INTO conversations VALUES (?, ?, ?)",
            (conversation.chat_id, conversation.expires_at, conversation.dump()),
        )
        await db.commit()

    async def delete(self, chat_id: int) -> None:
        db = await self._connection()
        await db.execute("DELETE FROM conversations WHERE chat_id = ?", (chat_id,))
        await db.commit()

    async def sweep(self, now: float) -> int:
        db = await self._connection()
        cursor = await db.execute("DELETE FROM conversations WHERE expires_at < ?", (now,))
        await db.commit()
        return cursor.rowcount

    async def count(self) -> int:
        db = await self._connection()
        async with db.execute("SELECT COUNT(*) FROM conversations") as rows:
            row = await rows.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None


class RedisStore:
    """One key per chat, expiring by itself at the conversation's `expires_at`."""

    def __init__(self, url: str, prefix: str = "flowgram:conversation:") -> None:
        self.client = redis_asyncio.from_url(url)
        self.prefix = prefix

    def _key(self, chat_id: int) -> str:
        return f"{self.prefix}{chat_id}"

    async def load(self, chat_id: int) -> Conversation | None:
        blob = await self.client.get(self._key(chat_id))
        return Conversation.load(blob) if blob else None

    async def save(self, conversation: Conversation) -> None:
        key = self._key(conversation.chat_id)
        await self.client.set(
            key, conversation.dump(), pxat=max(int(conversation.expires_at * 1000), 1)
        )

    async def delete(self, chat_id: int) -> None:
        await self.client.delete(self._key(chat_id))

    async def sweep(self, now: float) -> int:
        """Redis expires keys by itself; a sweep with a clock ahead of Redis's removes
        what that clock says is over (tests move time on)."""
        if now <= time.time() + 1:
            return 0
        removed = 0
        async for key in self.client.scan_iter(match=f"{self.prefix}*", count=1000):
            blob = await self.client.get(key)
            if blob and Conversation.load(blob).expires_at < now:
                removed += await self.client.delete(key)
        return removed

    async def count(self) -> int:
        total = 0
        async for _ in self.client.scan_iter(match=f"{self.prefix}*", count=1000):
            total += 1
        return total

    async def close(self) -> None:
        await self.client.aclose()


def open_store(url: str, root: Path | None = None) -> ConversationStore:
    """The store named by STORAGE_URL: memory://, sqlite:///path or redis://host:port/db."""
    scheme = urlparse(url).scheme
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
        if path != ":memory:" and root is not None and not Path(path).is_absolute():
            path = str(root / path)
        return SqliteStore(path)
    if scheme in ("redis", "rediss", "unix"):
        return RedisStore(url)
    raise ConfigError(
        f"storage {url!r} is not supported; expected memory://, "
        "sqlite:///path/to/file.sqlite3 or redis://host:6379/0"
    )
