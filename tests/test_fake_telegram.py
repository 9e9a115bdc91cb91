"""The fake Telegram Bot API (tests/fakes), proven with aiogram itself rather than our bot."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import ClientSession, web

from tests.fakes import FakeTelegram
from tests.fakes.telegram import NOT_MODIFIED

BOUND = 5.0
USER = 1001
LANGUAGES = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="Русский", callback_data="lang:ru"),
            InlineKeyboardButton(text="O'zbek", callback_data="lang:uz"),
        ]
    ]
)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    """aiogram's AiohttpSession minus its 250 ms TLS grace on close (see test_get_me)."""
    bot = tg.bot()
    yield bot
    await bot.session.close()


class Receiver:
    """A webhook endpoint on loopback: records each POST, answers with the queued statuses."""

    def __init__(
        self, statuses: list[int] | None = None, reply: dict[str, Any] | None = None
    ) -> None:
        self.statuses = list(statuses or [])
        self.reply = reply or {}
        self.received: asyncio.Queue[tuple[dict[str, str], dict[str, Any]]] = asyncio.Queue()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.put_nowait((dict(request.headers), await request.json()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response(self.reply if status == 200 else {}, status=status)

    async def next(self) -> tuple[dict[str, str], dict[str, Any]]:
        return await asyncio.wait_for(self.received.get(), BOUND)


async def poll(bot: Bot, **kwargs: Any) -> list[Update]:
    return await asyncio.wait_for(bot.get_updates(**kwargs), BOUND)


async def test_get_me_through_a_plain_aiohttp_session(tg: FakeTelegram) -> None:
    bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    try:
        me = await bot.get_me()
    finally:
        await bot.session.close()
    assert (me.id, me.is_bot, me.username) == (123456, True, "test_bot")
    assert [call.method for call in tg.calls()] == ["getMe"]


async def test_send_message_with_inline_keyboard(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER, first_name="Ali", language_code="uz")
    sent = await bot.send_message(USER, "Tilni tanlang", reply_markup=LANGUAGES, parse_mode="HTML")
    assert isinstance(sent, Message)
    assert sent.chat.id == USER and sent.from_user is not None and sent.from_user.is_bot
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump() == LANGUAGES.model_dump()
    message = await user.wait_for_message(contains="Tilni", timeout=BOUND)
    assert message.message_id == sent.message_id
    assert message.buttons == [["Русский", "O'zbek"]]
    assert user.last_bot_message is message


async def test_edit_message_text_and_not_modified(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    sent = await bot.send_message(USER, "Tilni tanlang", reply_markup=LANGUAGES)
    edited = await bot.edit_message_text("Язык: русский", chat_id=USER, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.text == "Язык: русский"
    assert edited.edit_date is not None and edited.reply_markup is None
    assert (await user.wait_for_message(contains="Язык")).edited == 1
    with pytest.raises(TelegramBadRequest) as error:
        await bot.edit_message_text("Язык: русский", chat_id=USER, message_id=sent.message_id)
    assert error.value.message == NOT_MODIFIED
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id)
    await bot.edit_message_reply_markup(
        chat_id=USER, message_id=sent.message_id, reply_markup=LANGUAGES
    )
    assert user.last_bot_message is not None and user.last_bot_message.buttons


async def test_edit_and_delete_of_missing_messages(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    sent = await bot.send_message(USER, "bye")
    assert await bot.delete_message(USER, sent.message_id) is True
    assert user.bot_messages[0].deleted and user.last_bot_message is None
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    mine = await user.send("hi")
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=USER, message_id=mine.message_id)


@pytest.mark.parametrize(
    ("text", "markup", "expected"),
    [
        (" ", None, "Bad Request: message text is empty"),
        ("x" * 4097, None, "Bad Request: message is too long"),
        (
            "hi",
            InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="d" * 65)]]
            ),
            "Bad Request: BUTTON_DATA_INVALID",
        ),
    ],
)
async def test_send_message_errors(
    tg: FakeTelegram, bot: Bot, text: str, markup: InlineKeyboardMarkup | None, expected: str
) -> None:
    tg.user(USER)
    with pytest.raises(TelegramBadRequest) as error:
        await bot.send_message(USER, text, reply_markup=markup)
    assert error.value.message == expected
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "who?")
    assert await bot.send_message(USER, "x" * 4096)


async def test_long_polling_returns_a_text_and_the_offset_confirms(
    tg: FakeTelegram, bot: Bot
) -> None:
    user = tg.user(USER, first_name="Ali", language_code="uz")
    waiting = asyncio.create_task(bot.get_updates(timeout=10))
    await tg.wait_for(lambda: len(tg.calls("getUpdates")) == 1, what="the long poll")
    assert not waiting.done()
    await user.send("hello")
    updates = await asyncio.wait_for(waiting, BOUND)
    assert len(updates) == 1 and updates[0].message is not None
    message = updates[0].message
    assert message.text == "hello" and message.chat.type == "private"
    assert message.from_user is not None and message.from_user.language_code == "uz"
    assert await poll(bot, offset=updates[0].update_id + 1, timeout=0) == []
    assert tg.confirmed_offset == updates[0].update_id + 1
    assert tg.pending_updates == [] and tg.offsets == [None, updates[0].update_id + 1]


async def test_long_polling_holds_until_its_timeout(tg: FakeTelegram, bot: Bot) -> None:
    started = time.monotonic()
    assert await poll(bot, timeout=1) == []
    assert time.monotonic() - started >= 0.9


async def test_limit_duplicates_and_negative_offset(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    for text in ("one", "two", "three"):
        await user.send(text)
    first = await poll(bot, limit=2)
    assert [u.message.text for u in first if u.message] == ["one", "two"]
    update_id = first[0].update_id
    raw = {"update_id": update_id + 10, "message": user.messages[0].to_api()}
    tg.deliver_raw(raw)
    tg.deliver_raw(raw)
    ids = [u.update_id for u in await poll(bot, offset=update_id + 3)]
    assert ids == [update_id + 10, update_id + 10]
    assert [u.update_id for u in await poll(bot, offset=-1)] == [update_id + 10]


async def test_a_second_long_poll_terminates_the_first(tg: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await tg.wait_for(lambda: len(tg.calls("getUpdates")) == 1, what="the first poll")
    second = asyncio.create_task(bot.get_updates(timeout=10))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, BOUND)
    await tg.user(USER).send("hi")
    assert len(await asyncio.wait_for(second, BOUND)) == 1


async def test_press_produces_a_callback_query(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    sent = await bot.send_message(USER, "Tilni tanlang", reply_markup=LANGUAGES)
    query_id = await user.press("Русский")
    [update] = await poll(bot)
    query = update.callback_query
    assert query is not None and query.id == query_id and query.data == "lang:ru"
    assert query.from_user.id == USER and query.chat_instance
    assert isinstance(query.message, Message) and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="OK", show_alert=True)
    answer = await user.wait_for_answer(timeout=BOUND)
    assert (answer.text, answer.show_alert) == ("OK", True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    await user.press("lang:uz", message_id=sent.message_id)
    with pytest.raises(AssertionError, match="no callback button 'Deutsch'"):
        await user.press("Deutsch")


async def test_too_many_requests_is_retry_after(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    tg.fail("sendMessage", status=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(USER, "hi")
    assert error.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in error.value.message
    assert user.bot_messages == []
    await bot.send_message(USER, "hi")
    assert [call.status for call in tg.calls("sendMessage")] == [429, 200]


async def test_server_errors_and_dropped_connections(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    tg.fail("sendMessage", status=500, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(USER, "hi")
    tg.fail("getUpdates", drop=True)
    with pytest.raises(TelegramNetworkError):
        await bot.get_updates()
    tg.slow("getMe", 0.1)
    started = time.monotonic()
    assert await bot.get_me()
    assert time.monotonic() - started >= 0.1
    tg.fail("sendMessage", drop_after_apply=True)
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(USER, "delivered anyway")
    assert [m.text for m in user.bot_messages] == ["delivered anyway"]
    assert [call.dropped for call in tg.calls("sendMessage")] == [False, False, True]


async def test_blocked_user_is_forbidden(tg: FakeTelegram, bot: Bot) -> None:
    tg.user(USER)
    tg.block(USER)
    with pytest.raises(TelegramForbiddenError) as error:
        await bot.send_message(USER, "hi")
    assert error.value.message == "Forbidden: bot was blocked by the user"
    tg.unblock(USER)
    assert await bot.send_message(USER, "hi")


async def test_wrong_token_is_unauthorized(tg: FakeTelegram) -> None:
    bot = tg.bot("999:WRONG")
    with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
        await bot.get_me()
    with pytest.raises(TelegramUnauthorizedError):
        await bot.send_message(USER, "hi")
    assert [call.status for call in tg.calls()] == [401, 401]


async def test_unknown_method_is_not_found(tg: FakeTelegram) -> None:
    async with ClientSession() as http:
        url = f"{tg.base_url}/bot{tg.token}/sendTelepathy"
        async with http.post(url, data={"chat_id": "1"}) as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }


async def test_webhook_delivery_with_the_secret(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    async with Receiver() as receiver:
        assert await bot.set_webhook(receiver.url, secret_token="s3cret-token")
        assert (tg.webhook is not None) and tg.webhook.secret == "s3cret-token"
        await user.send("hi")
        headers, body = await receiver.next()
        assert headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret-token"
        update = Update.model_validate(body)
        assert update.message is not None and update.message.text == "hi"
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert info.url == receiver.url
        await tg.wait_for(lambda: not tg.pending_updates, what="the delivery to settle")
        assert await bot.delete_webhook()
    assert tg.webhook is None
    await user.send("polling again")
    [update] = await poll(bot)
    assert update.message is not None and update.message.text == "polling again"


async def test_webhook_retries_a_failed_delivery(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    async with Receiver(statuses=[500, 502]) as receiver:
        await bot.set_webhook(receiver.url)
        await user.send("hi")
        ids = [(await receiver.next())[1]["update_id"] for _ in range(3)]
        assert len(set(ids)) == 1
        await tg.wait_for(lambda: not tg.pending_updates, what="the delivery")
        assert [d.status for d in tg.webhook_deliveries] == [500, 502, 200]
        assert tg.undelivered_updates == []
        info = await bot.get_webhook_info()
        assert info.last_error_message == "Wrong response from the webhook: 502 Bad Gateway"
        await bot.delete_webhook()


async def test_webhook_answer_method_is_performed(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    reply = {"method": "sendMessage", "chat_id": USER, "text": "pong"}
    async with Receiver(reply=reply) as receiver:
        await bot.set_webhook(receiver.url)
        await user.send("ping")
        message = await user.wait_for_message(contains="pong", timeout=BOUND)
        assert message.from_bot
        assert tg.calls("sendMessage")[0].via_webhook
        await bot.delete_webhook()


async def test_an_aiogram_webhook_handler_and_its_reply(tg: FakeTelegram, bot: Bot) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"pong: {message.text}")  # answered in the webhook's reply

    app = web.Application()
    handler = SimpleRequestHandler(
        dispatcher, bot, secret_token="s3cret", handle_in_background=False
    )
    handler.register(app, path="/hook")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        await bot.set_webhook(url, secret_token="s3cret")
        await tg.user(USER).send("ping")
        answer = await tg.user(USER).wait_for_message(contains="pong", timeout=BOUND)
    finally:
        await runner.cleanup()
    assert answer.text == "pong: ping"
    assert [(d.attempt, d.status) for d in tg.webhook_deliveries] == [(1, 200)]
    assert [call.via_webhook for call in tg.calls("sendMessage")] == [True]


async def test_commands_per_language_and_scope(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    await bot.set_my_commands(
        [BotCommand(command="start", description="Boshlash")], language_code="uz"
    )
    await bot.set_my_commands(
        [BotCommand(command="help", description="Помощь")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="ru",
    )
    assert tg.commands == {
        "": [{"command": "start", "description": "Start"}],
        "uz": [{"command": "start", "description": "Boshlash"}],
    }
    uz = await bot.get_my_commands(language_code="uz")
    assert [c.description for c in uz] == ["Boshlash"]
    scoped = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="ru")
    assert [c.command for c in scoped] == ["help"]
    assert await bot.get_my_commands(language_code="ru") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])


async def test_reply_keyboard_contact_and_removal(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER, first_name="Ali")
    share = KeyboardButton(text="Raqamni yuborish", request_contact=True)
    markup = ReplyKeyboardMarkup(keyboard=[[share]], resize_keyboard=True)
    sent = await bot.send_message(USER, "Telefon raqamingiz?", reply_markup=markup)
    assert sent.reply_markup is None  # Telegram echoes inline keyboards only
    assert user.reply_keyboard == [["Raqamni yuborish"]] and user.contact_requested
    await user.share_contact(own=True)
    await user.share_contact(phone="998901234567", own=False)
    own, other = [u.message.contact for u in await poll(bot) if u.message]
    assert own is not None and own.user_id == USER and own.phone_number.startswith("+998")
    assert other is not None and other.user_id is None and other.phone_number == "998901234567"
    await bot.send_message(USER, "Rahmat", reply_markup=ReplyKeyboardRemove())
    assert user.reply_keyboard is None and not user.contact_requested
    tg.group(-100500, user_id=USER)
    with pytest.raises(TelegramBadRequest, match="private chats only"):
        await bot.send_message(-100500, "phone?", reply_markup=markup)


async def test_every_kind_of_user_update_parses(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER)
    await user.send("/start deep-link")
    await user.send_sticker()
    await user.send_photo(caption="look")
    await user.send_document()
    await user.send_voice()
    await user.send_location()
    await user.edit_last("/start other")
    await tg.group(-100500, user_id=USER).send("hello group")
    await tg.channel_post(-100777, "news")
    updates = await poll(bot)
    messages = [u.message for u in updates[:6]]
    assert all(messages)
    start = messages[0]
    assert start is not None and start.entities is not None
    assert (start.entities[0].type, start.entities[0].length) == ("bot_command", 6)
    kinds = [m.content_type for m in messages if m is not None]
    assert kinds == ["text", "sticker", "photo", "document", "voice", "location"]
    edited, group, channel = updates[6:]
    assert edited.edited_message is not None and edited.edited_message.text == "/start other"
    assert group.message is not None and group.message.chat.type == "supergroup"
    assert channel.channel_post is not None and channel.channel_post.chat.type == "channel"


async def test_wait_for_message_times_out_with_the_chat(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(USER, first_name="Ali")
    await user.send("/start")
    await bot.send_message(USER, "Salom")
    assert (await user.wait_for_message(timeout=BOUND)).text == "Salom"
    with pytest.raises(AssertionError) as error:
        await user.wait_for_message(contains="Tilni", timeout=0.1)
    assert "#1 Ali: '/start'" in str(error.value) and "#2 bot: 'Salom'" in str(error.value)


async def test_calls_are_recorded_for_rate_checks(tg: FakeTelegram, bot: Bot) -> None:
    tg.user(USER)
    tg.user(1002)
    for chat_id in (USER, USER, 1002, USER):
        await bot.send_message(chat_id, "hi")
    await bot.send_chat_action(USER, "typing")
    sends = tg.calls("sendmessage", chat_id=USER)
    assert len(sends) == 3 and sends[0].params["text"] == "hi"
    assert all(a.at <= b.at for a, b in itertools.pairwise(sends))
    assert tg.peak_rate("sendMessage", chat_id=USER) == 3
    assert tg.peak_rate("sendMessage") == 4
    assert [(a.chat_id, a.action) for a in tg.chat_actions] == [(USER, "typing")]
    assert await bot.close() and await bot.log_out()


async def test_a_dispatcher_polls_the_fake(tg: FakeTelegram, bot: Bot) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(f"pong: {message.text}")

    user = tg.user(USER)
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        await user.send("ping")
        assert (await user.wait_for_message(contains="pong", timeout=BOUND)).text == "pong: ping"
    finally:
        await asyncio.wait_for(dispatcher.stop_polling(), BOUND)
        await asyncio.wait_for(polling, BOUND)
