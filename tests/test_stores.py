"""Where conversations live is a setting: memory, SQLite and Redis keep the same thing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.stores import RedisStore, SqliteStore, open_store
from engine.conversation import Conversation, Frame
from engine.errors import ConfigError
from engine.storage import ConversationStore, MemoryStore
from tests.helpers import command, make_bot, press, text

REDIS_URL = "redis://127.0.0.1:6379/15"


def conversation(chat_id: int, expires_at: float) -> Conversation:
    return Conversation(
        chat_id=chat_id,
        flow="registration",
        version=1,
        state="ask_phone",
        language="ru",
        data={"full_name": "Каримова Нодира", "course": 2},
        live_message_id=41,
        expires_at=expires_at,
        parents=[Frame("feedback", "register", {"registered": False})],
    )


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> AsyncIterator[ConversationStore]:
    kind = request.param
    if kind == "memory":
        made: ConversationStore = MemoryStore()
    elif kind == "sqlite":
        made = SqliteStore(str(tmp_path / "conversations.sqlite3"))
    else:
        made = RedisStore(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    yield made
    await made.close()


async def test_a_saved_conversation_comes_back_the_same(store: ConversationStore) -> None:
    original = conversation(1, expires_at=2_000_000_000.0)
    await store.save(original)

    assert await store.load(1) == original
    assert await store.load(2) is None
    assert await store.count() == 1

    await store.delete(1)
    assert await store.load(1) is None


async def test_a_sweep_forgets_only_the_idle(store: ConversationStore) -> None:
    await store.save(conversation(1, expires_at=2_000_000_100.0))
    await store.save(conversation(2, expires_at=2_000_000_300.0))

    assert await store.sweep(2_000_000_200.0) == 1

    assert await store.load(1) is None
    assert (await store.load(2)).chat_id == 2


@pytest.mark.parametrize("url", ["sqlite:///conversations.sqlite3", REDIS_URL])
async def test_a_conversation_survives_a_restart_of_the_bot(url: str, tmp_path: Path) -> None:
    first = make_bot()
    first.engine.store = open_store(url, tmp_path)
    chat = 900_000 + uuid.uuid4().int % 100_000
    await first.engine.handle(command(chat, "/start"))
    message_id, _ = first.last_buttons()
    await first.engine.handle(press(chat, message_id, "ru"))
    await first.engine.store.close()

    second = make_bot()
    second.engine.store = open_store(url, tmp_path)
    await second.engine.handle(text(chat, "1234"))

    assert second.texts()[:2] == [
        "ПИНФЛ должен состоять из 14 цифр. Отправьте ещё раз.",
        "Отправьте ваш ПИНФЛ (JSHSHIR): 14 цифр.",
    ]
    await second.engine.store.delete(chat)
    await second.engine.store.close()


def test_an_unknown_storage_url_is_refused_with_the_forms_that_work() -> None:
    with pytest.raises(ConfigError, match="expected memory://, sqlite:///"):
        open_store("postgres://localhost/db")
