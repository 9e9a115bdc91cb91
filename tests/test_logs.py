"""Logs tell the story of a conversation without personal data or secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger

from engine.logs import FORMAT, mask, setup_logging
from tests.helpers import command, contact, make_bot, press, text


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    setup_logging("DEBUG")
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG", format=FORMAT)
    yield lines
    logger.remove(sink)
    setup_logging("WARNING")


async def test_a_whole_registration_logs_no_name_phone_or_pinfl(log_lines: list[str]) -> None:
    bot = make_bot()
    await bot.engine.handle(command(11, "/start"))
    message_id, _ = bot.last_buttons()
    await bot.engine.handle(press(11, message_id, "ru"))
    await bot.engine.handle(text(11, "45678901234567"))
    await bot.engine.handle(text(11, "Qodirov Botir Anvarovich"))
    await bot.engine.handle(contact(11, "998907654321"))
    message_id, _ = bot.last_buttons()
    await bot.engine.handle(press(11, message_id, "#0"))
    message_id, _ = bot.last_buttons()
    await bot.engine.handle(press(11, message_id, "#0"))
    assert (await bot.engine.store.load(11)).state == "menu"

    whole = "\n".join(log_lines)
    assert "backend call endpoint=register_user status=201" in whole
    for secret in ("45678901234567", "998907654321", "Qodirov", "Botir"):
        assert secret not in whole


def test_numbers_that_look_like_phones_or_pinfls_are_masked() -> None:
    assert mask("+998901234567 and 12345678901234") == "+99********67 and 123*********34"
    assert mask("Authorization: Bearer eyJhbGciOi.x.y") == "Authorization: Bearer ***"
    assert mask("chat=777 step=3") == "chat=777 step=3"
