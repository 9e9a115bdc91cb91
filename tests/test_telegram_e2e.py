"""`flowgram run` end to end: the feedback bot as a subprocess against a fake Bot API server.

Each mode (long polling, webhook) shares one bot process across the conversation tests, a
new user id per test; refusals to start and graceful stops get processes of their own. Every
wait is bounded and driven by what the fake server sees, never by a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession, ClientTimeout

from tests.fakes import FakeTelegram
from tests.fakes.telegram import EDIT_NOT_FOUND, NOT_MODIFIED, FakeUser

ROOT = Path(__file__).resolve().parent.parent
READY_WITHIN = 60.0  # aiogram's imports alone take seconds on a loaded machine
BOUND = 10.0  # any one reply
ANSWER_WITHIN = 1.5  # a pressed button is answered (config: answer_buttons_within 1s)
STOP_WITHIN = 15.0  # a stop finishes what is in progress (config: shutdown_grace 10s)
PER_CHAT_BURST = 5  # config: per_chat_burst
PINFL = "12345678901234"  # the demo registry's complete student
PRIVATE_ONLY = "Bu bot faqat shaxsiy chatda ishlaydi."
PRIVATE_ONLY_TEXT = f"{PRIVATE_ONLY} / Этот бот работает только в личных сообщениях."
LANGUAGE = {"uz": "🇺🇿 O'zbekcha", "ru": "🇷🇺 Русский"}
ASK_PINFL = {"uz": "JSHSHIR (PINFL) raqamingizni yuboring", "ru": "Отправьте ваш ПИНФЛ"}
MENU = {"uz": "Asosiy menyu. Nima yubormoqchisiz?", "ru": "Главное меню. Что вы хотите"}
ERROR_TEXT = ("Kechirasiz, nimadir xato ketdi", "Извините, что-то пошло не так")

pytestmark = pytest.mark.asyncio(loop_scope="module")
user_ids = itertools.count(40_001)


# -- the bot process ---------------------------------------------------------------------


@dataclass
class BotProcess:
    """`flowgram run` in a subprocess; its stdout and stderr (the log) go to a file."""

    tg: FakeTelegram
    mode: str
    process: asyncio.subprocess.Process
    log_path: Path
    webhook_url: str | None = None

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_lines(self, *needles: str) -> list[str]:
        return [line for line in self.log.splitlines() if all(n in line for n in needles)]

    async def wait_for_log(self, *needles: str) -> None:
        """Until a log line holds every needle."""
        await until(lambda: bool(self.log_lines(*needles)), f"a log line with {needles}")

    async def until_ready(self) -> None:
        """Until it polls (or has set its webhook): its command menu is set by then."""

        def ready() -> bool:
            if self.mode == "webhook":
                return self.tg.webhook is not None
            return any(call.method == "getUpdates" for call in self.tg.calls())

        code = await self._until(ready, READY_WITHIN, "the bot to start")
        if code is not None:
            raise AssertionError(f"flowgram run exited {code} while starting:\n{self.log}")

    async def _until(self, predicate: Any, timeout: float, what: str) -> int | None:
        """Wait for `predicate` (None) or the process's exit (its code), whichever is first."""
        waiting = asyncio.ensure_future(self.tg.wait_for(predicate, timeout=timeout, what=what))
        exiting = asyncio.ensure_future(self.process.wait())
        done, _ = await asyncio.wait({waiting, exiting}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiting, exiting):
            task.cancel()
        await asyncio.gather(waiting, exiting, return_exceptions=True)
        if waiting in done:
            waiting.result()
            return None
        return self.process.returncode

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, float]:
        """Send `sig`; the exit code and how long the exit took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), STOP_WITHIN)
        except TimeoutError:
            await self.close()
            raise AssertionError(
                f"no exit within {STOP_WITHIN}s of {sig.name}:\n{self.log}"
            ) from None
        return code, time.monotonic() - started

    async def exited(self, timeout: float = READY_WITHIN) -> int:
        """The exit code of a run that is expected to end by itself."""
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.close()
            raise AssertionError(
                f"flowgram run did not end within {timeout}s:\n{self.log}"
            ) from None

    async def close(self) -> None:
        """Terminate, wait (bounded), kill."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_WITHIN)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def until(predicate: Callable[[], bool], what: str, timeout: float = BOUND) -> None:
    """For what the fake does not signal (a log line, a call still unanswered): looked at
    every 20 ms, at most `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def launch(
    tg: FakeTelegram,
    log_path: Path,
    *,
    mode: str = "polling",
    token: str | None = None,
    config: Path | None = None,
) -> BotProcess:
    """Start `flowgram run` against `tg` (token "" leaves TELEGRAM_BOT_TOKEN unset)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TELEGRAM_API_SERVER": tg.base_url,
        "LOG_LEVEL": "DEBUG",
    }
    token = tg.token if token is None else token
    env |= {"TELEGRAM_BOT_TOKEN": token} if token else {}
    url = None
    if mode == "webhook":
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        env |= {
            "TELEGRAM_MODE": "webhook",
            "WEBHOOK_URL": url,
            "WEBHOOK_HOST": "127.0.0.1",
            "WEBHOOK_PORT": str(port),
        }
    options = ["--config", str(config)] if config else []
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "adapters.cli", *options, "run"],
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    return BotProcess(tg, mode, process, log_path, url)


BOTS: dict[str, dict[str, Any]] = {
    "polling": {},
    "webhook": {"mode": "webhook"},
    "refused": {"token": "654321:WRONG"},
    "idle-sigint": {
        "faults": [
            {"method": "getMe", "status": 502},
            {"method": "setMyCommands", "status": 500},
            {"method": "deleteWebhook", "status": 429, "retry_after": 1},
        ]
    },
    "idle-sigterm": {"mode": "webhook", "faults": [{"method": "setWebhook", "drop": True}]},
}
"""Every bot process of the module, by name: how `launch` starts it, and the faults its
server has in store for it."""
AHEAD = {"polling": ["webhook", "refused"], "webhook": ["idle-sigint", "idle-sigterm"]}
"""Bots started as soon as another one serves, while its tests talk to it."""


class Fleet:
    """The module's bot processes by name, each against a fake server of its own.

    aiogram's imports take seconds of CPU, so bots start ahead of need (see AHEAD),
    while the tests of a bot already serving talk to it, mostly waiting on replies.
    """

    def __init__(self, folder: Path, stack: contextlib.AsyncExitStack) -> None:
        self.folder = folder
        self.stack = stack
        self.bots: dict[str, BotProcess] = {}

    async def start(self, name: str) -> BotProcess:
        if name not in self.bots:
            tg = await self.stack.enter_async_context(FakeTelegram())
            options = dict(BOTS[name])
            for fault in options.pop("faults", []):
                tg.fail(**fault)
            self.bots[name] = await launch(tg, self.folder / f"{name}.log", **options)
        return self.bots[name]

    async def ready(self, name: str) -> BotProcess:
        running = await self.start(name)
        await running.until_ready()
        for other in AHEAD.get(name, []):
            await self.start(other)
        return running

    async def close(self) -> None:
        await asyncio.gather(*(running.close() for running in self.bots.values()))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    async with contextlib.AsyncExitStack() as stack:
        bots = Fleet(tmp_path_factory.mktemp("bots"), stack)
        try:
            yield bots
        finally:
            await bots.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["polling", "webhook"])
async def bot(request: pytest.FixtureRequest, fleet: Fleet) -> BotProcess:
    """One bot per mode, shared by the conversation tests (each with users of its own)."""
    return await fleet.ready(request.param)


# -- playing a user ----------------------------------------------------------------------


def new_user(bot: BotProcess, language: str = "uz") -> FakeUser:
    return bot.tg.user(next(user_ids), first_name="Ali", language_code=language)


async def press(user: FakeUser, label: str) -> str:
    """Press a button: its spinner must stop quickly, whatever the bot does next."""
    pressed = time.monotonic()
    query = await user.press(label)
    answer = await user.wait_for_answer(query, timeout=BOUND)
    assert answer.at - pressed <= ANSWER_WITHIN, f"{label!r} answered after {answer.at - pressed}"
    return query


async def reply(user: FakeUser, contains: str, **kwargs: Any) -> Any:
    return await user.wait_for_message(contains, timeout=BOUND, **kwargs)


async def start(user: FakeUser) -> Any:
    await user.send("/start")
    return await reply(user, "Tilni tanlang")


async def register(user: FakeUser, language: str = "uz") -> Any:
    """A student the registry knows completely: language, PINFL, and the main menu."""
    await start(user)
    await press(user, LANGUAGE[language])
    await reply(user, ASK_PINFL[language])
    await user.send(PINFL)
    return await reply(user, MENU[language])


def sent_to(bot: BotProcess, user: FakeUser, method: str = "sendMessage") -> list[Any]:
    return bot.tg.calls(method, chat_id=user.chat_id)


# -- starting ----------------------------------------------------------------------------


async def test_the_command_menu_is_set_in_each_language(bot: BotProcess) -> None:
    commands = bot.tg.commands
    assert commands["uz"] == [
        {"command": "start", "description": "Boshlash"},
        {"command": "menu", "description": "Asosiy menyu"},
        {"command": "help", "description": "Yordam"},
        {"command": "cancel", "description": "Bekor qilish"},
    ]
    assert commands["ru"] == [
        {"command": "start", "description": "Начать"},
        {"command": "menu", "description": "Главное меню"},
        {"command": "help", "description": "Помощь"},
        {"command": "cancel", "description": "Отменить"},
    ]
    assert commands[""] == commands["uz"]  # the default: the flow's first language
    assert bot.tg.calls()[0].method == "getMe"


# -- the conversations -------------------------------------------------------------------


async def test_registration_and_a_complaint_in_uzbek(bot: BotProcess) -> None:
    user = new_user(bot, "uz")
    choose = await start(user)
    assert choose.buttons == [["🇺🇿 O'zbekcha", "🇷🇺 Русский"]]

    await press(user, "🇺🇿 O'zbekcha")
    asked = await reply(user, "JSHSHIR (PINFL) raqamingizni yuboring: 14 ta raqam.")
    assert asked.message_id == choose.message_id and asked.buttons == []

    await user.send("99999999999999")
    await reply(user, "⏳ Ma'lumotlaringiz tekshirilmoqda...")
    await reply(user, "Ma'lumotlaringiz topilmadi. Bir nechta savolga javob bering.")
    await reply(user, "Familiya, ism va otangizning ismini yozing.")

    await user.send("Toshmatov Eshmat Ergashevich")
    await reply(user, "Telefon raqamingizni +998XXXXXXXXX ko'rinishida yozing")
    assert user.reply_keyboard == [["📱 Raqamni yuborish"]] and user.contact_requested

    await user.share_contact()
    await reply(user, "✅ Telefon raqami saqlandi.")
    assert user.reply_keyboard is None
    courses = await reply(user, "Kursingizni tanlang.")
    assert courses.buttons == [["1-kurs", "2-kurs"], ["3-kurs", "4-kurs"]]

    await press(user, "4-kurs")
    await reply(user, "Yo'nalishingizni tanlang.")
    await press(user, "Iqtisodiyot")
    await reply(user, "✅ Ro'yxatdan o'tdingiz!")
    assert user.reply_keyboard == [["✉️ Xabar yuborish"]]
    menu = await reply(user, "Asosiy menyu. Nima yubormoqchisiz?")
    assert menu.buttons == [["💡 Taklif", "⚠️ Shikoyat"]]

    await press(user, "⚠️ Shikoyat")
    categories = await reply(user, "Shikoyat nima haqida? Bo'limni tanlang.")
    assert categories.message_id == menu.message_id
    assert ["🏫 Sharoit", "📝 Qabul"] in categories.buttons
    await press(user, "🏫 Sharoit")
    await reply(user, "Bino, xona, jihozlar yoki infratuzilma bilan bog'liq muammoni yozing.")
    await user.send("3-binoning 214-xonasida proyektor ikki haftadan beri ishlamayapti.")
    await reply(user, "Rahmat! Xabaringiz ko'rib chiqishga yuborildi.")
    await reply(user, "Asosiy menyu")
    assert bot.tg.peak_rate("sendMessage", chat_id=user.chat_id) <= PER_CHAT_BURST


async def test_a_registered_user_sends_a_suggestion_in_russian(bot: BotProcess) -> None:
    user = bot.tg.user(777, first_name="Malika", language_code="ru")
    await user.send("/start")
    await reply(user, "С возвращением, Saidova Malika!")
    menu = await reply(user, "Главное меню. Что вы хотите отправить?")
    assert menu.buttons == [["💡 Предложение", "⚠️ Жалоба"]]

    await press(user, "💡 Предложение")
    prompt = await reply(user, "Напишите ваше предложение (от 10 до 1000 символов).")
    assert prompt.message_id == menu.message_id and prompt.buttons == []
    await user.send("Пожалуйста, добавьте больше розеток в читальном зале.")
    await reply(user, "Спасибо! Ваше сообщение передано на рассмотрение.")
    await reply(user, "Главное меню. Что вы хотите отправить?")


async def test_a_sticker_where_text_is_expected_gets_the_error_text(bot: BotProcess) -> None:
    user = new_user(bot, "ru")
    await register(user, "ru")
    await press(user, "💡 Предложение")
    await reply(user, "Напишите ваше предложение")
    await user.send_sticker()
    await reply(user, "Пожалуйста, напишите сообщение текстом.")
    await reply(user, "Напишите ваше предложение")
    await user.send("Больше скамеек во дворе, пожалуйста.")
    await reply(user, "Спасибо!")


async def test_sends_to_one_chat_stay_within_telegrams_advice(bot: BotProcess) -> None:
    user = new_user(bot)
    await start(user)
    await press(user, LANGUAGE["uz"])
    await reply(user, ASK_PINFL["uz"])
    for attempt in range(3):  # each refusal is two messages: the error and the question
        await user.send(f"123-{attempt}")
    for _ in range(3):
        await reply(user, "JSHSHIR 14 ta raqamdan iborat bo'lishi kerak.")
        await reply(user, ASK_PINFL["uz"])
    assert len(sent_to(bot, user)) == 1 + 6
    assert bot.tg.peak_rate("sendMessage", chat_id=user.chat_id) <= PER_CHAT_BURST


# -- what Telegram says no to ------------------------------------------------------------


async def test_429_waits_retry_after_and_sends_once(bot: BotProcess) -> None:
    user = new_user(bot)
    bot.tg.fail("sendMessage", 429, retry_after=1, chat_id=user.chat_id)
    await start(user)
    refused, sent = sent_to(bot, user)
    assert (refused.status, sent.status) == (429, 200)
    assert sent.at - refused.at >= 1.0
    assert len(user.bot_messages) == 1


async def test_a_server_error_on_send_is_retried_and_sends_once(bot: BotProcess) -> None:
    user = new_user(bot)
    bot.tg.fail("sendMessage", 502, chat_id=user.chat_id)
    await start(user)
    assert [call.status for call in sent_to(bot, user)] == [502, 200]
    assert len(user.bot_messages) == 1


async def test_a_send_whose_answer_was_lost_is_not_sent_twice(bot: BotProcess) -> None:
    user = new_user(bot)
    bot.tg.fail("sendMessage", drop_after_apply=True, chat_id=user.chat_id)
    await start(user)
    assert len(sent_to(bot, user)) == 1 and len(user.bot_messages) == 1
    # The message arrived though the bot never heard so: its buttons still work.
    await press(user, LANGUAGE["uz"])
    await reply(user, ASK_PINFL["uz"])
    assert [m.text for m in user.bot_messages if "Tilni" in (m.text or "")] == [
        user.bot_messages[0].text
    ]


async def test_a_user_who_blocked_the_bot_ends_their_conversation(bot: BotProcess) -> None:
    gone, other = new_user(bot), new_user(bot)
    await start(gone)
    await press(gone, LANGUAGE["uz"])
    await reply(gone, ASK_PINFL["uz"])
    bot.tg.block(gone.chat_id)
    await gone.send(PINFL)
    await bot.wait_for_log("cannot be reached", f"chat={gone.chat_id}")
    await start(other)  # the bot goes on serving everyone else
    assert [call.status for call in sent_to(bot, gone)][-1] == 403
    assert len(bot.log_lines("cannot be reached", f"chat={gone.chat_id}")) == 1
    bot.tg.unblock(gone.chat_id)
    await gone.send("salom")  # the conversation was ended: this one starts anew
    await reply(gone, "Tilni tanlang")


async def test_message_is_not_modified_is_not_an_error(bot: BotProcess) -> None:
    user = new_user(bot)
    await register(user)
    bot.tg.fail("editMessageText", 400, description=NOT_MODIFIED, chat_id=user.chat_id)
    await press(user, "💡 Taklif")
    await bot.tg.wait_for(lambda: bool(sent_to(bot, user, "editMessageText")), timeout=BOUND)
    await user.send("/menu")
    await reply(user, MENU["uz"])
    texts = [m.text or "" for m in user.bot_messages]
    assert not [t for t in texts if t.startswith(ERROR_TEXT)]
    assert not bot.log_lines("ERROR", f"chat={user.chat_id}")


async def test_a_message_to_edit_that_is_gone_is_sent_anew(bot: BotProcess) -> None:
    user = new_user(bot)
    menu = await register(user)
    bot.tg.fail("editMessageText", 400, description=EDIT_NOT_FOUND, chat_id=user.chat_id)
    await press(user, "⚠️ Shikoyat")
    categories = await reply(user, "Shikoyat nima haqida?", edits=False)
    assert categories.message_id > menu.message_id and categories.buttons
    await press(user, "📚 Dars jarayoni")  # the new message's buttons are the live ones
    await reply(user, "Muammoni yozing: o'qituvchi ismi")


async def test_a_forged_button_is_answered_and_changes_nothing(bot: BotProcess) -> None:
    user = new_user(bot)
    menu = await register(user)
    before = len(bot.tg.calls(chat_id=user.chat_id))
    query = f"forged-{user.id}"
    bot.tg._pressed.add(query)  # a query Telegram would deliver, with data no button has
    bot.tg.deliver_raw(
        {
            "callback_query": {
                "id": query,
                "from": user.user,
                "message": menu.to_api(),
                "chat_instance": "1",
                "data": "admin:drop_everything",
            }
        }
    )
    await user.wait_for_answer(query, timeout=BOUND)
    await press(user, "💡 Taklif")
    await reply(user, "Taklifingizni yozing")
    after = bot.tg.calls(chat_id=user.chat_id)[before:]
    assert [call.method for call in after] == ["editMessageText"]


async def test_the_same_update_twice_is_taken_once(bot: BotProcess) -> None:
    user = new_user(bot)
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": user.chat,
        "from": user.user,
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    update_id = bot.tg.deliver_raw({"message": message})
    bot.tg.deliver_raw({"update_id": update_id, "message": message})
    await reply(user, "Tilni tanlang")
    await press(user, LANGUAGE["uz"])
    await reply(user, ASK_PINFL["uz"])
    assert len(user.bot_messages) == 1


async def test_groups_channels_and_edits_are_not_served(bot: BotProcess) -> None:
    user = new_user(bot)
    member = bot.tg.group(-100_000_000_000 - user.id, user_id=user.id)
    await member.send("salom hammaga")
    await member.send("/start")
    await reply(member, PRIVATE_ONLY)
    post = await bot.tg.channel_post(-100_900_000_000 - user.id, "/start")
    await start(user)
    await user.edit_last("/help")
    await press(user, LANGUAGE["uz"])
    await reply(user, ASK_PINFL["uz"])
    assert [m.text for m in member.bot_messages] == [PRIVATE_ONLY_TEXT]
    assert not bot.tg.calls("sendMessage", chat_id=post.chat_id)
    assert len(user.bot_messages) == 1


# -- per mode ----------------------------------------------------------------------------


async def test_polling_survives_server_errors_and_dropped_connections(bot: BotProcess) -> None:
    if bot.mode != "polling":
        pytest.skip("long polling only")
    user = new_user(bot)
    failures = [bot.tg.fail("getUpdates", 502), bot.tg.fail("getUpdates", drop=True)]
    await start(user)  # the poll already waiting brings it; the next two fail
    polls = len(bot.tg.offsets)
    await bot.tg.wait_for(
        lambda: all(f.times == 0 for f in failures) and len(bot.tg.offsets) > polls,
        timeout=BOUND,
        what="polling to fail twice and come back",
    )
    await press(user, LANGUAGE["ru"])
    await reply(user, ASK_PINFL["ru"])
    assert bot.log_lines("polling failed") and bot.log_lines("polling is back")


async def test_the_webhook_refuses_a_wrong_secret(bot: BotProcess) -> None:
    if bot.mode != "webhook":
        pytest.skip("webhook only")
    hook = bot.tg.webhook
    assert hook is not None and hook.url == bot.webhook_url and hook.secret
    user = new_user(bot)
    forged = {
        "update_id": 10**9 + user.id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": user.chat,
            "from": user.user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
    async with ClientSession(timeout=ClientTimeout(total=BOUND)) as client:
        for headers in ({"X-Telegram-Bot-Api-Secret-Token": "guess"}, {}):
            async with client.post(hook.url, json=forged, headers=headers) as response:
                assert response.status == 401
    await start(user)  # only the real /start is answered
    assert len(user.bot_messages) == 1 and len(sent_to(bot, user)) == 1


# -- refusing to start -------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def assert_one_clear_line(output: str, line: str) -> None:
    assert "Traceback" not in output, output
    assert [text for text in output.splitlines() if line in text] == [
        output.strip().splitlines()[-1]
    ], output


async def test_a_missing_token_ends_at_once(tg: FakeTelegram, tmp_path: Path) -> None:
    run = await launch(tg, tmp_path / "log", token="")
    assert await run.exited() != 0
    assert_one_clear_line(run.log, "TELEGRAM_BOT_TOKEN is not set")
    assert not tg.calls()


async def test_a_refused_token_ends_with_one_line(fleet: Fleet) -> None:
    run = await fleet.start("refused")
    assert await run.exited() != 0
    assert_one_clear_line(run.log, "Telegram refused TELEGRAM_BOT_TOKEN")
    assert [call.status for call in run.tg.calls()] == [401]


async def test_a_broken_flow_refuses_to_start(tg: FakeTelegram, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("feedback.yaml", "registration.yaml"):
        (flows / name).write_text((ROOT / "flows" / name).read_text(encoding="utf-8"))
    broken = flows / "registration.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace("go: ask_pinfl", "go: ask_pin"))
    config = (ROOT / "config.yaml").read_text(encoding="utf-8")
    config = config.replace("flows: flows ", f"flows: {flows} ").replace(
        "[flows/actions.py]", f"[{ROOT / 'flows' / 'actions.py'}]"
    )
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    run = await launch(tg, tmp_path / "log", config=tmp_path / "config.yaml")
    assert await run.exited() == 1
    problems = [line for line in run.log.splitlines() if re.match(r".+:\d+:\d+: error: ", line)]
    assert problems and all(line.startswith(str(broken)) for line in problems)
    assert "ask_pin" in problems[0] and "Traceback" not in run.log
    assert not tg.calls()


# -- starting while Telegram is unwell -------------------------------------------------


async def test_refusals_while_starting_are_waited_out(fleet: Fleet) -> None:
    polling, webhook = await fleet.ready("idle-sigint"), await fleet.ready("idle-sigterm")
    statuses = {m: [c.status for c in polling.tg.calls(m)] for m in ("getMe", "deleteWebhook")}
    assert statuses == {"getMe": [502, 200], "deleteWebhook": [429, 200]}
    assert [call.status for call in polling.tg.calls("setMyCommands")][:2] == [500, 200]
    assert set(polling.tg.commands) == {"uz", "ru", ""}
    assert [call.ok for call in webhook.tg.calls("setWebhook")] == [False, True]
    assert "Traceback" not in polling.log + webhook.log
    user = webhook.tg.user(next(user_ids))
    await start(user)


# -- stopping ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
async def test_a_stop_while_idle_exits_cleanly(fleet: Fleet, sig: signal.Signals) -> None:
    running = await fleet.ready(f"idle-{sig.name.lower()}")
    code, took = await running.stop(sig)
    assert code == 0, running.log
    assert took < 5.0 and running.log_lines("stopped cleanly")
    assert "Traceback" not in running.log


async def test_a_stop_mid_update_delivers_the_reply(bot: BotProcess) -> None:
    """Last for each mode's bot, which it stops: by SIGTERM when polling, else SIGINT."""
    sig = signal.SIGTERM if bot.mode == "polling" else signal.SIGINT
    user = new_user(bot)
    bot.tg.slow("sendMessage", 2)
    await user.send("/start")
    await until(lambda: bool(sent_to(bot, user)), "the reply to /start to be on its way")
    assert not user.bot_messages  # held by the server for 2 s
    code, took = await bot.stop(sig)
    assert code == 0, bot.log
    assert took < STOP_WITHIN and bot.log_lines("stopped cleanly")
    [sent] = sent_to(bot, user)
    assert sent.status == 200 and len(user.bot_messages) == 1
    assert (user.bot_messages[0].text or "").startswith("Assalomu alaykum! Tilni tanlang.")
