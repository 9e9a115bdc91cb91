"""Nothing lost: submissions the service cannot take now are kept, then delivered once.

First the outbox itself (SQLite on a temporary file, and the in-memory one, to the same
contract), then the story: the suggestions service goes down while students submit, comes
back, and every message is stored exactly once, also when the bot restarts in between.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adapters.outbox import SqliteOutbox
from engine.backend import QUEUED
from engine.outbox import MemoryOutbox, Outbox
from tests.fakes.backend import FakeBackend
from tests.test_backend_http import Client, connect, message

ENDPOINT = "submit_message"
IDS = [f"m-{n}" for n in range(1, 6)]


def sqlite(tmp_path: Path) -> Outbox:
    return SqliteOutbox(tmp_path / "var" / "outbox.sqlite3")


def memory(tmp_path: Path) -> Outbox:
    return MemoryOutbox()


@pytest.fixture(params=[sqlite, memory])
async def box(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Outbox]:
    make: Callable[[Path], Outbox] = request.param
    outbox = make(tmp_path)
    try:
        yield outbox
    finally:
        await outbox.close()


# -- the outbox --------------------------------------------------------------------------


async def test_kept_calls_come_back_oldest_first_until_settled(box: Outbox) -> None:
    for message_id in ["m-1", "m-2", "m-3"]:
        await box.put(ENDPOINT, message(message_id), message_id)
    pending = await box.pending()
    assert [parcel.key for parcel in pending] == ["m-1", "m-2", "m-3"]
    assert all(parcel.endpoint == ENDPOINT for parcel in pending)
    assert pending[0].params == message("m-1")  # None, False and text come back as kept
    assert await box.depth() == 3

    first, second, third = pending
    await box.delivered(first)
    await box.refused(second, "suggestions POST /messages (status 413): text too long")
    await box.attempted(third)
    [left] = await box.pending()
    assert (left.key, left.attempts) == ("m-3", 1)
    assert await box.depth() == 1
    assert [parcel.key for parcel in await box.pending(limit=0)] == []


async def test_the_same_key_twice_is_kept_once(box: Outbox) -> None:
    await box.put(ENDPOINT, message("m-1"), "m-1")
    await box.put(ENDPOINT, message("m-1", text="Bir xabar ikki marta yuborildi."), "m-1")
    [parcel] = await box.pending()
    assert parcel.params == message("m-1")  # the first one kept
    await box.delivered(parcel)
    await box.put(ENDPOINT, message("m-1"), "m-1")  # delivered: not kept again
    assert await box.depth() == 0


async def test_the_sqlite_outbox_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    before = SqliteOutbox(path)
    for message_id in IDS[:3]:
        await before.put(
            ENDPOINT, message(message_id, text="Ётоқхонада иссиқ сув йўқ."), message_id
        )
    [first, *_] = await before.pending()
    await before.delivered(first)
    await before.close()

    after = SqliteOutbox(path)
    try:
        assert [parcel.key for parcel in await after.pending()] == IDS[1:3]
        assert (await after.pending())[0].params["text"] == "Ётоқхонада иссиқ сув йўқ."
        assert await after.depth() == 2
    finally:
        await after.close()


# -- an outage during submissions, then recovery -----------------------------------------


async def submit_during_an_outage(fake: FakeBackend, client: Client) -> None:
    """The suggestions service is down: each of five submissions is kept, none lost."""
    await fake.suggestions.down()
    for message_id in IDS:
        assert await client.call("submit_message", **message(message_id)) == QUEUED
    assert (await client.backend.status())["queued"] == len(IDS)
    assert not fake.suggestions.calls("/messages")  # nothing got through


def assert_delivered_once(fake: FakeBackend) -> None:
    assert [stored["messageId"] for stored in fake.stored_messages] == IDS  # oldest first
    posts = fake.suggestions.calls("/messages", "POST")
    assert [call.status for call in posts] == [201] * len(IDS)  # each sent exactly once
    assert [call.idempotency_key for call in posts] == IDS
    assert [call.json["messageId"] for call in posts] == IDS
    assert fake.duplicates_refused == 0


async def test_an_outage_then_recovery_delivers_every_message_once(
    tmp_path: Path,
) -> None:
    async with FakeBackend() as fake:
        outbox = SqliteOutbox(tmp_path / "outbox.sqlite3")
        async with connect(fake, outbox=outbox) as client:
            await submit_during_an_outage(fake, client)
            assert await client.backend.deliver_queued() == 0  # still down: kept, in order
            assert await outbox.depth() == len(IDS)

            await fake.suggestions.up()
            breaker = client.service("suggestions").breaker
            client.clock.advance(breaker.cooldown)  # the open circuit lets its probe through
            assert await client.backend.deliver_queued() == len(IDS)
            assert await outbox.depth() == 0
            assert await client.backend.deliver_queued() == 0  # nothing twice
        assert_delivered_once(fake)


async def test_messages_kept_before_a_restart_are_delivered_after_it(tmp_path: Path) -> None:
    path = tmp_path / "var" / "outbox.sqlite3"
    async with FakeBackend() as fake:
        async with connect(fake, outbox=SqliteOutbox(path)) as before:
            await submit_during_an_outage(fake, before)
        # The bot stops with five messages kept, and starts again once the service is back.
        await fake.suggestions.up()
        async with connect(fake, outbox=SqliteOutbox(path)) as after:
            assert (await after.backend.status())["queued"] == len(IDS)
            assert await after.backend.deliver_queued() == len(IDS)
            assert (await after.backend.status())["queued"] == 0
        assert_delivered_once(fake)


async def test_a_message_the_service_refuses_is_set_aside_and_the_rest_delivered(
    tmp_path: Path,
) -> None:
    async with FakeBackend() as fake:
        outbox = SqliteOutbox(tmp_path / "outbox.sqlite3")
        async with connect(fake, outbox=outbox) as client:
            await fake.suggestions.down()
            for message_id in IDS[:3]:
                text = "x" * 1001 if message_id == "m-2" else "Oshxonada navbat juda uzun."
                await client.call("submit_message", **message(message_id, text=text))
            await fake.suggestions.up()
            client.clock.advance(client.service("suggestions").breaker.cooldown)
            assert await client.backend.deliver_queued() == 2
            assert await outbox.depth() == 0  # m-2 refused for good (413), not retried
            assert await client.backend.deliver_queued() == 0
        assert [stored["messageId"] for stored in fake.stored_messages] == ["m-1", "m-3"]
        assert fake.suggestions.count("/messages", "POST") == 3
