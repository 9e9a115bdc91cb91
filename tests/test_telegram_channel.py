"""TelegramChannel in process against the fake Bot API: long texts, refusals, lost answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from adapters.telegram.channel import TEXT_LIMIT, TelegramChannel, split_text
from engine.actions import Button, EditMessage, SendMessage
from engine.config import TelegramConfig
from engine.errors import RecipientGone
from tests.fakes import FakeTelegram
from tests.fakes.telegram import FakeUser

CHAT = 3001
BOUND = 5.0
BUTTONS = ((Button("✅ Ha", "yes"), Button("❌ Yo'q", "no")),)
MARKUP = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="✅ Ha", callback_data="yes")]]
)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def user(tg: FakeTelegram) -> FakeUser:
    return tg.user(CHAT, first_name="Ali", language_code="uz")


def channel_on(tg: FakeTelegram, **config: float) -> TelegramChannel:
    return TelegramChannel(tg.bot(), TelegramConfig(**config))


def paragraph(number: int) -> str:
    return "\n".join(f"{number}.{line} " + " ".join(["so'z"] * 20) for line in range(1, 13))


def long_text(parts: list[str], separator: str) -> str:
    text = ""
    while len(text) < 10_000:
        parts.append(paragraph(len(parts) + 1))
        text = separator.join(parts)
    return text


# -- splitting ---------------------------------------------------------------------------


def test_a_long_text_is_split_between_paragraphs() -> None:
    paragraphs: list[str] = []
    text = long_text(paragraphs, "\n\n")
    parts = split_text(text)
    assert len(parts) == 3 and all(len(part) <= TEXT_LIMIT for part in parts)
    assert all(set(part.split("\n\n")) <= set(paragraphs) for part in parts)
    assert "\n\n".join(parts) == text


def test_without_paragraphs_lines_then_words_then_characters() -> None:
    lines = long_text([], "\n")
    assert "\n".join(split_text(lines)) == lines
    assert all(part.endswith("so'z") for part in split_text(lines))
    words = lines.replace("\n", " ")
    parts = split_text(words)
    assert " ".join(parts) == words and all(len(part) <= TEXT_LIMIT for part in parts)
    assert [len(part) for part in split_text("x" * 10_000)] == [4096, 4096, 1808]


def test_a_boundary_early_in_the_window_is_not_taken() -> None:
    text = "Sarlavha\n\n" + " ".join(["so'z"] * 2_000)
    first, *_ = split_text(text)
    assert len(first) > TEXT_LIMIT // 2 and first.startswith("Sarlavha")


async def test_the_parts_go_out_in_order_with_the_buttons_on_the_last(
    tg: FakeTelegram, user: FakeUser
) -> None:
    text = long_text([], "\n\n")
    message_id = await channel_on(tg).deliver(SendMessage(CHAT, text, BUTTONS))
    sent = user.bot_messages
    assert [m.text for m in sent] == split_text(text)
    assert [m.buttons for m in sent] == [[], [], [["✅ Ha", "❌ Yo'q"]]]
    assert message_id == sent[-1].message_id


async def test_a_429_on_the_second_part_waits_and_loses_nothing(
    tg: FakeTelegram, user: FakeUser
) -> None:
    text = long_text([], "\n\n")
    tg.slow("sendMessage", 0)  # the first part goes through
    tg.fail("sendMessage", 429, retry_after=1)
    await channel_on(tg).send(CHAT, text, MARKUP)
    calls = tg.calls("sendMessage")
    assert [call.status for call in calls] == [200, 429, 200, 200]
    assert calls[2].at - calls[1].at >= 1.0
    assert [m.text for m in user.bot_messages] == split_text(text)


# -- editing -----------------------------------------------------------------------------


async def test_message_is_not_modified_is_success(tg: FakeTelegram, user: FakeUser) -> None:
    channel = channel_on(tg)
    message_id = await channel.deliver(SendMessage(CHAT, "Tilni tanlang", BUTTONS))
    assert message_id is not None
    same = EditMessage(CHAT, message_id, "Tilni tanlang", BUTTONS)
    assert await channel.deliver(same) == message_id
    [call] = tg.calls("editMessageText")
    assert "not modified" in (call.description or "")
    assert len(user.bot_messages) == 1


async def test_a_message_to_edit_that_is_gone_is_sent_anew(
    tg: FakeTelegram, user: FakeUser
) -> None:
    channel = channel_on(tg)
    new_id = await channel.deliver(EditMessage(CHAT, 999, "Kursingizni tanlang.", BUTTONS))
    [message] = user.bot_messages
    assert new_id == message.message_id != 999
    assert (message.text, message.buttons) == ("Kursingizni tanlang.", [["✅ Ha", "❌ Yo'q"]])


async def test_a_blocked_user_is_recipient_gone(tg: FakeTelegram, user: FakeUser) -> None:
    tg.block(CHAT)
    with pytest.raises(RecipientGone) as gone:
        await channel_on(tg).deliver(SendMessage(CHAT, "Salom"))
    assert gone.value.chat_id == CHAT and "blocked" in str(gone.value)
    assert len(tg.calls("sendMessage")) == 1  # not retried


# -- lost answers ------------------------------------------------------------------------


async def test_a_send_whose_answer_was_lost_is_not_sent_again(
    tg: FakeTelegram, user: FakeUser
) -> None:
    tg.fail("sendMessage", drop_after_apply=True)
    assert await channel_on(tg).deliver(SendMessage(CHAT, "Salom", BUTTONS)) is None
    assert len(tg.calls("sendMessage")) == 1 and len(user.bot_messages) == 1


async def test_an_edit_is_retried_after_a_dropped_connection(
    tg: FakeTelegram, user: FakeUser
) -> None:
    channel = channel_on(tg)
    message_id = await channel.deliver(SendMessage(CHAT, "Tilni tanlang", BUTTONS))
    assert message_id is not None
    tg.fail("editMessageText", drop=True)
    edit = EditMessage(CHAT, message_id, "JSHSHIR raqamingizni yuboring")
    assert await channel.deliver(edit) == message_id
    tg.fail("editMessageText", drop_after_apply=True)
    again = EditMessage(CHAT, message_id, "JSHSHIR (PINFL) raqamingizni yuboring")
    assert await channel.deliver(again) == message_id
    assert [call.ok for call in tg.calls("editMessageText")] == [False, True, False, False]
    [message] = user.bot_messages
    assert message.text == again.text and message.edited == 2


async def test_a_server_error_on_send_is_retried(tg: FakeTelegram, user: FakeUser) -> None:
    tg.fail("sendMessage", 500)
    tg.fail("sendMessage", 503)
    await channel_on(tg).deliver(SendMessage(CHAT, "Salom"))
    assert [call.status for call in tg.calls("sendMessage")] == [500, 503, 200]
    assert len(user.bot_messages) == 1


# -- buttons -----------------------------------------------------------------------------


async def test_a_button_is_answered_in_time_while_the_engine_is_slow(
    tg: FakeTelegram, user: FakeUser
) -> None:
    channel = channel_on(tg, answer_buttons_within=0.2)
    await channel.deliver(SendMessage(CHAT, "Tilni tanlang", BUTTONS))
    pressed = time.monotonic()
    query = await user.press("✅ Ha")
    channel.answer_soon(query)  # the engine is busy elsewhere and has not answered
    answer = await user.wait_for_answer(query, timeout=BOUND)
    assert 0.2 <= answer.at - pressed < 1.0 and answer.text is None
    await channel.answer(query, "Bu tugma eskirgan")  # the engine's own answer, later
    assert len(tg.calls("answerCallbackQuery")) == 1


async def test_an_engine_answer_in_time_cancels_the_fallback(
    tg: FakeTelegram, user: FakeUser
) -> None:
    channel = channel_on(tg, answer_buttons_within=0.2)
    await channel.deliver(SendMessage(CHAT, "Tilni tanlang", BUTTONS))
    first = await user.press("✅ Ha")
    channel.answer_soon(first)
    await channel.answer(first, "Bu tugma eskirgan")
    second = await user.press("❌ Yo'q")
    channel.answer_soon(second)
    await user.wait_for_answer(second, timeout=BOUND)  # the first's timer was due before
    assert tg.callback_answers[first].text == "Bu tugma eskirgan"
    assert len(tg.calls("answerCallbackQuery")) == 2


# -- limits ------------------------------------------------------------------------------


async def test_a_burst_to_one_chat_is_held_to_telegrams_advice(
    tg: FakeTelegram, user: FakeUser
) -> None:
    channel = channel_on(tg)
    other = tg.user(CHAT + 1)
    started = time.monotonic()
    for number in range(6):
        await channel.deliver(SendMessage(CHAT, f"Xabar {number}"))
    await channel.deliver(SendMessage(other.chat_id, "Boshqa chat"))
    calls = tg.calls("sendMessage", chat_id=CHAT)
    assert len(calls) == 6 and tg.peak_rate("sendMessage", chat_id=CHAT) <= 5
    assert calls[5].at - calls[0].at >= 1.0
    assert time.monotonic() - started < 3.0
    assert await asyncio.wait_for(other.wait_for_message("Boshqa chat"), BOUND)
