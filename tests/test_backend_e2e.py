"""The whole feedback conversation through `flowgram run`, against the fake backend services.

The bot runs as a subprocess pointed at a fake Bot API server (FakeTelegram) and at both
fake services (FakeBackend) by its environment, as a deployment would point it at the real
ones, with a config of its own in a temporary folder (short retry delays, a short circuit
cool-down, the outbox file there and tried every half second). A new student registers and
complains; then the suggestions service goes down while a suggestion is sent, the student
is told it is saved, and once the service is back the suggestion is stored exactly once.
Every wait is bounded and waits on what the fakes see.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import FakeTelegram
from tests.fakes.backend import FakeBackend
from tests.fakes.telegram import FakeUser

ROOT = Path(__file__).resolve().parent.parent
READY_WITHIN = 60.0  # aiogram's imports alone take seconds on a loaded machine
BOUND = 10.0  # any one reply
DELIVERED_WITHIN = 15.0  # the outbox is tried every 0.5 s, the circuit cools down in 1 s
STOP_WITHIN = 15.0
PASSWORD = "s3cret-e2e"
PINFL = "41234567890123"
NAME = "Karimova Dilnoza Rustamovna"
PHONE = "+998971234567"
CHAT = 60_001
COMPLAINT = "3-binoning 214-xonasida proyektor ikki haftadan beri ishlamayapti."
SUGGESTION = "Kutubxonani shanba va yakshanba kunlari ham ochiq qoldirsangiz."

HEALTH_PATHS = ("/health", "/", "/users")


def bot_config(folder: Path) -> Path:
    """config.yaml with absolute flow paths, the outbox in `folder` and short waits."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["flows"] = str(ROOT / "flows")
    config["custom_actions"] = [str(ROOT / path) for path in config["custom_actions"]]
    backend = config["backend"]
    backend["outbox"] = {"path": str(folder / "outbox.sqlite3"), "retry_every": "0.5s"}
    backend["circuit_cooldown"] = "1s"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


class Bot:
    """`flowgram run` as a subprocess; its log (stdout and stderr) goes to a file."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def until(self, waiting: Any, what: str) -> None:
        """Until `waiting` (a fake's bounded wait) ends; fail at once if the bot exits."""
        waiter = asyncio.ensure_future(waiting)
        exiting = asyncio.ensure_future(self.process.wait())
        done, _ = await asyncio.wait({waiter, exiting}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, exiting):
            task.cancel()
        await asyncio.gather(waiter, exiting, return_exceptions=True)
        if waiter not in done:
            raise AssertionError(f"flowgram run exited while waiting for {what}:\n{self.log}")
        waiter.result()

    async def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), STOP_WITHIN)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(
                f"no exit within {STOP_WITHIN}s of SIGTERM:\n{self.log}"
            ) from None


async def launch(tg: FakeTelegram, services: FakeBackend, folder: Path) -> Bot:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_SERVER": tg.base_url,
        "LOG_LEVEL": "DEBUG",
        "API_RETRY_DELAY": "10",
        "API_TIMEOUT": "3000",
        **services.env(),
    }
    log_path = folder / "bot.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "adapters.cli", "--config", str(bot_config(folder)), "run"],
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    return Bot(process, log_path)


@pytest.fixture
async def services() -> AsyncIterator[FakeBackend]:
    async with FakeBackend(password=PASSWORD) as fake:
        fake.add_student(PINFL, full_name=NAME, phone=PHONE, course=2, field_title="Economics")
        yield fake


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram, services: FakeBackend, tmp_path: Path) -> AsyncIterator[Bot]:
    running = await launch(tg, services, tmp_path)

    def polling() -> bool:
        return bool(tg.calls("getUpdates"))

    try:
        await running.until(tg.wait_for(polling, timeout=READY_WITHIN), "the bot to start")
        yield running
    finally:
        if running.process.returncode is None:
            running.process.kill()
            await running.process.wait()


async def press(user: FakeUser, label: str) -> None:
    await user.press(label)
    await user.wait_for_answer(timeout=BOUND)


async def reply(bot: Bot, user: FakeUser, contains: str) -> Any:
    return await bot.until(user.wait_for_message(contains, timeout=BOUND), repr(contains))


async def test_register_complain_then_a_suggestion_survives_an_outage(
    bot: Bot, tg: FakeTelegram, services: FakeBackend
) -> None:
    user = tg.user(CHAT, first_name="Dilnoza", language_code="uz")

    # A new student registers: the registry knows them completely.
    await user.send("/start")
    await reply(bot, user, "Tilni tanlang")
    await press(user, "🇺🇿 O'zbekcha")
    await reply(bot, user, "JSHSHIR (PINFL) raqamingizni yuboring")
    await user.send(PINFL)
    await reply(bot, user, "Ma'lumotlaringiz topildi.")
    await reply(bot, user, "✅ Ro'yxatdan o'tdingiz!")
    await reply(bot, user, "Asosiy menyu. Nima yubormoqchisiz?")

    # The health checks at start (/health, then /) are not part of the conversation.
    login, lookup = [c for c in services.registry.calls() if c.path not in HEALTH_PATHS]
    assert (login.method, login.path, login.status) == ("POST", "/auth/login", 200)
    assert login.json == {"username": "bot", "password": PASSWORD}
    assert (lookup.path, lookup.status) == (f"/students/by-pinfl/{PINFL}", 200)
    assert lookup.bearer == services.issued_tokens[0]  # the access token from the login
    [registered] = services.suggestions.calls("/users", "POST")
    assert registered.status == 201
    assert registered.json == {
        "userId": str(CHAT),
        "chatId": str(CHAT),
        "fullName": NAME,
        "phone": PHONE,
        "course": "2",
        "direction": "Economics",
        "language": "uz",
    }

    # A complaint goes straight through, with its category and its idempotency key.
    await press(user, "⚠️ Shikoyat")
    await reply(bot, user, "Shikoyat nima haqida?")
    await press(user, "🏫 Sharoit")
    await reply(bot, user, "Bino, xona, jihozlar yoki infratuzilma")
    await user.send(COMPLAINT)
    await reply(bot, user, "Rahmat! Xabaringiz ko'rib chiqishga yuborildi.")
    await reply(bot, user, "Asosiy menyu")
    [complaint] = services.stored_messages
    assert complaint["ticketType"] == "complaint" and complaint["substatus"] == "Conditions"
    assert (complaint["text"], complaint["language"]) == (COMPLAINT, "uz")
    assert (complaint["userId"], complaint["chatId"]) == (str(CHAT), str(CHAT))
    assert (complaint["status"], complaint["isactive"]) == ("pending", False)
    [sent] = services.suggestions.calls("/messages", "POST")
    assert sent.idempotency_key == complaint["messageId"]

    # The suggestions service goes down: the suggestion is kept and the student told so.
    await services.suggestions.down()
    await press(user, "💡 Taklif")
    await reply(bot, user, "Taklifingizni yozing")
    await user.send(SUGGESTION)
    await reply(bot, user, "Xizmat hozir javob bermayapti. Xabaringiz saqlandi")
    await reply(bot, user, "Asosiy menyu")
    assert len(services.stored_messages) == 1

    # It comes back: the outbox delivers the suggestion, once.
    await services.suggestions.up()
    await bot.until(
        services.wait_for(
            lambda: len(services.stored_messages) == 2,
            timeout=DELIVERED_WITHIN,
            what="the kept suggestion to be delivered",
        ),
        "the delivery",
    )
    suggestion = services.stored_messages[1]
    assert (suggestion["ticketType"], suggestion["substatus"]) == ("suggestion", None)
    assert suggestion["text"] == SUGGESTION
    delivered = [c for c in services.suggestions.calls("/messages", "POST") if c.status == 201]
    assert [c.idempotency_key for c in delivered] == [
        complaint["messageId"],
        suggestion["messageId"],
    ]
    assert services.duplicates_refused == 0
    assert await bot.stop() == 0

    # The whole log of the run: no token, password, PINFL, phone or name in any line.
    log = bot.log
    assert "outbox: delivered 1 kept call(s)" in log
    assert "Traceback" not in log
    for secret in [*services.issued_tokens, PASSWORD, PINFL, PHONE, PHONE[1:], *NAME.split()]:
        assert secret not in log, secret
