"""A fake Telegram Bot API server for end-to-end tests.

`FakeTelegram` is a real aiohttp server on 127.0.0.1 (an ephemeral port) that answers the Bot API
the way aiogram 3's `AiohttpSession` calls it: `POST {base}/bot{token}/{method}` with a form
(nested objects such as `reply_markup` JSON-encoded as strings) or a JSON body, answered with
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": ...}`.

A test drives the users' side through `FakeUser` (send text, press buttons, share a contact,
...) and waits, event-driven and bounded, for what the bot sends back. Updates go out by long
polling (`getUpdates`) or, once a webhook is set, are POSTed to it. Every call is recorded with
its monotonic time, and failures (429, 5xx, dropped connections) can be injected per method.

    async with FakeTelegram() as tg:            # tg.base_url -> TELEGRAM_API_SERVER, tg.token
        user = tg.user(1001, first_name="Ali", language_code="uz")
        await user.send("/start")
        menu = await user.wait_for_message(contains="Tilni", timeout=5)
        await user.press("Русский")
        await user.wait_for_answer()
        tg.fail("sendMessage", status=429, retry_after=1)
        assert tg.peak_rate("sendMessage", chat_id=1001) <= 1

Only what a conversation bot uses is implemented: getMe, getUpdates, setWebhook, deleteWebhook,
getWebhookInfo, sendMessage, editMessageText, editMessageReplyMarkup, deleteMessage,
answerCallbackQuery, set/get/deleteMyCommands, sendChatAction, close and logOut. Any other
method answers 404 like Telegram does. parse_mode is ignored: texts are stored as sent. A chat
exists once a test makes it (`user`, `group`, `channel_post`); elsewhere: "chat not found".
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, MultipartReader, web

from tests.fakes.signal import Signal as _Signal

JsonDict = dict[str, Any]
Handler = Callable[[JsonDict], Awaitable[Any]]

LOOPBACK = "127.0.0.1"
DEFAULT_TOKEN = "123456:TEST"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
DELETE_NOT_FOUND = "Bad Request: message to delete not found"
TEXT_EMPTY = "Bad Request: message text is empty"
TEXT_TOO_LONG = "Bad Request: message is too long"
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
CHAT_NOT_FOUND = "Bad Request: chat not found"
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BLOCKED = "Forbidden: bot was blocked by the user"
KICKED = "Forbidden: bot was kicked from the group chat"
NOT_IN_CHANNEL = "Forbidden: bot is not a member of the channel chat"
METHOD_NOT_FOUND = "Not Found: method not found"
CONFLICT_WEBHOOK = "Conflict: can't use getUpdates method while webhook is active"
CONFLICT_POLLING = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: BLOCKED,
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_JSON_KEYS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "message_ids",
    }
)
_INT_KEYS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "reply_to_message_id",
        "cache_time",
        "message_thread_id",
        "user_id",
    }
)
_BOOL_KEYS = frozenset(
    {
        "drop_pending_updates",
        "show_alert",
        "disable_notification",
        "protect_content",
        "disable_web_page_preview",
        "allow_sending_without_reply",
    }
)
_INTEGER = re.compile(r"-?\d+")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_BUTTON_ACTIONS = frozenset(
    {
        "callback_data",
        "url",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_CONTENT_KINDS = (
    "text",
    "contact",
    "sticker",
    "photo",
    "document",
    "voice",
    "location",
    "video",
    "audio",
)


class LoopbackSession(AiohttpSession):
    """aiogram's AiohttpSession, closed without the 250 ms grace it waits for TLS sockets.

    The fake speaks plain HTTP on loopback, so there is no TLS shutdown to wait for.
    """

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and, for 429, retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class Answer:
    """A handler's result with the optional `description` Telegram adds (setWebhook...)."""

    result: Any
    description: str | None = None


@dataclass
class Call:
    """One API call as the fake saw it."""

    method: str
    params: JsonDict
    at: float
    status: int = 0
    description: str | None = None
    dropped: bool = False
    via_webhook: bool = False

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.dropped


@dataclass
class Failure:
    """An injected failure for the next `times` calls of `method` (optionally one chat)."""

    method: str
    status: int = 500
    retry_after: int | None = None
    times: int = 1
    drop: bool = False
    drop_after_apply: bool = False
    delay: float = 0.0
    description: str | None = None
    chat_id: int | None = None

    def matches(self, method: str, params: JsonDict) -> bool:
        if self.times <= 0 or self.method.lower() != method.lower():
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id

    def error(self) -> ApiError:
        if self.status == 429:
            retry_after = 1 if self.retry_after is None else self.retry_after
            description = self.description or f"Too Many Requests: retry after {retry_after}"
            return ApiError(429, description, retry_after)
        description = self.description or _DEFAULT_DESCRIPTIONS.get(self.status, "Error")
        return ApiError(self.status, description, self.retry_after)


@dataclass
class CallbackAnswer:
    """The bot's answerCallbackQuery for one pressed button."""

    id: str
    text: str | None
    show_alert: bool
    url: str | None
    at: float


@dataclass
class ChatAction:
    """One sendChatAction."""

    chat_id: int
    action: str
    at: float


@dataclass
class Webhook:
    """The webhook the bot set."""

    url: str
    secret: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class WebhookDelivery:
    """One attempt to POST an update to the webhook: status 0 means no HTTP answer."""

    update_id: int
    attempt: int
    status: int
    error: str | None


@dataclass(eq=False)
class StoredMessage:
    """A message in a chat, sent by a user or by the bot; edits and deletion update it."""

    message_id: int
    chat: JsonDict
    sender: JsonDict | None
    from_bot: bool
    date: int
    content: JsonDict
    inline_markup: JsonDict | None = None
    chat_keyboard: JsonDict | None = None
    reply_to: StoredMessage | None = None
    edited: int = 0
    edit_date: int | None = None
    deleted: bool = False
    history: list[str | None] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    @property
    def text(self) -> str | None:
        return self.content.get("text", self.content.get("caption"))

    @property
    def kind(self) -> str:
        return next((kind for kind in _CONTENT_KINDS if kind in self.content), "message")

    @property
    def reply_markup(self) -> JsonDict | None:
        return self.inline_markup or self.chat_keyboard

    @property
    def buttons(self) -> list[list[str]]:
        """The inline keyboard's labels, row by row."""
        rows = (self.inline_markup or {}).get("inline_keyboard", [])
        return [[_label(button) for button in row] for row in rows]

    @property
    def keyboard(self) -> list[list[str]]:
        """The reply keyboard sent with this message, row by row."""
        rows = (self.chat_keyboard or {}).get("keyboard", [])
        return [[_label(button) for button in row] for row in rows]

    @property
    def removes_keyboard(self) -> bool:
        return bool((self.chat_keyboard or {}).get("remove_keyboard"))

    @property
    def requests_contact(self) -> bool:
        rows = (self.chat_keyboard or {}).get("keyboard", [])
        return any(isinstance(b, dict) and b.get("request_contact") for row in rows for b in row)

    def inline_button(self, label: str) -> JsonDict | None:
        """The inline button with this label, else the one with this callback data."""
        rows = (self.inline_markup or {}).get("inline_keyboard", [])
        flat = [button for row in rows for button in row]
        by_label = [b for b in flat if b.get("text") == label]
        return (by_label or [b for b in flat if b.get("callback_data") == label] or [None])[0]

    def to_api(self, *, nested: bool = True) -> JsonDict:
        """The Message object as Telegram sends it."""
        data: JsonDict = {
            "message_id": self.message_id,
            "date": self.date,
            "chat": dict(self.chat),
        }
        if self.sender is not None:
            data["from"] = dict(self.sender)
        if self.chat.get("type") == "channel":
            data["sender_chat"] = dict(self.chat)
        data.update(copy.deepcopy(self.content))
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.inline_markup:
            data["reply_markup"] = copy.deepcopy(self.inline_markup)
        if nested and self.reply_to is not None:
            data["reply_to_message"] = self.reply_to.to_api(nested=False)
        return data

    def describe(self) -> str:
        origin = self.sender or self.chat
        who = "bot" if self.from_bot else origin.get("first_name") or origin.get("title")
        body = repr(self.text) if self.text is not None else f"<{self.kind}>"
        extras = [" | ".join(row) for row in self.buttons]
        extras += [f"keyboard: {' | '.join(row)}" for row in self.keyboard]
        extras += ["remove keyboard"] if self.removes_keyboard else []
        flags = f" (edited x{self.edited})" if self.edited else ""
        flags += " (deleted)" if self.deleted else ""
        tail = f" [{'; '.join(extras)}]" if extras else ""
        return f"#{self.message_id} {who}: {body}{tail}{flags}"


@dataclass(frozen=True)
class _Event:
    """Something the bot did in a chat, with the text as it was then."""

    kind: str
    message: StoredMessage
    text: str | None


@dataclass
class _Chat:
    info: JsonDict
    messages: list[StoredMessage] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)
    next_id: int = 1

    @property
    def id(self) -> int:
        return int(self.info["id"])

    def get(self, message_id: Any) -> StoredMessage | None:
        return next((m for m in self.messages if m.message_id == message_id), None)

    def add(self, sender: JsonDict | None, from_bot: bool, content: JsonDict) -> StoredMessage:
        message = StoredMessage(
            self.next_id, self.info, sender, from_bot, int(time.time()), content
        )
        self.next_id += 1
        self.messages.append(message)
        return message

    def transcript(self) -> str:
        return "\n".join(f"  {m.describe()}" for m in self.messages) or "  (no messages)"


def _label(button: Any) -> str:
    return str(button.get("text", "")) if isinstance(button, dict) else str(button)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _text_content(text: str) -> JsonDict:
    content: JsonDict = {"text": text}
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
    return content


def _coerce(key: str, value: Any) -> Any:
    """Form values arrive as strings; nested objects are JSON-encoded ones."""
    if not isinstance(value, str):
        return value
    if key in _JSON_KEYS:
        try:
            return json.loads(value)
        except ValueError:
            name = "reply keyboard markup" if key == "reply_markup" else key
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    if key in _INT_KEYS:
        return int(value) if _INTEGER.fullmatch(value.strip()) else value
    if key in _BOOL_KEYS:
        return value.strip().lower() in {"true", "1"}
    return value


async def _read_params(request: web.Request) -> JsonDict:
    raw: JsonDict = dict(request.query)
    if request.content_type == "application/json":
        text = await request.text()
        try:
            body = json.loads(text) if text.strip() else {}
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON object") from None
        raw.update(body if isinstance(body, dict) else {})
    elif request.body_exists:
        form = await request.post()
        for key, value in form.items():
            raw[key] = value if isinstance(value, str) else f"<file {value.filename}>"
    return {key: _coerce(key, value) for key, value in raw.items()}


def _rows(markup: JsonDict, key: str) -> list[list[Any]]:
    rows = markup.get(key)
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    return rows


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError(400, "Bad Request: can't parse inline keyboard button")
    if not _BUTTON_ACTIONS & button.keys():
        raise ApiError(
            400,
            "Bad Request: can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        )
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
        raise ApiError(400, BUTTON_DATA_INVALID)


def _check_markup(markup: Any, chat: JsonDict) -> JsonDict | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        for row in _rows(markup, "inline_keyboard"):
            for button in row:
                _check_inline_button(button)
        return markup if markup["inline_keyboard"] else None
    if "keyboard" in markup:
        buttons = [button for row in _rows(markup, "keyboard") for button in row]
        asks_phone = any(isinstance(b, dict) and b.get("request_contact") for b in buttons)
        if asks_phone and chat.get("type") != "private":
            raise ApiError(400, "Bad Request: phone number can be requested in private chats only")
    return markup


def _checked_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, TEXT_EMPTY)
    if len(text) > MAX_TEXT:
        raise ApiError(400, TEXT_TOO_LONG)
    return text


def _check_webhook_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ApiError(400, "Bad Request: bad webhook: invalid webhook URL specified")
    if parts.hostname not in _LOOPBACK_HOSTS:
        raise ApiError(400, "Bad Request: bad webhook: the fake delivers to loopback only")


def _error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


class FakeTelegram:
    """The Bot API on 127.0.0.1, plus the state and the hooks a test needs."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_name: str = "Test Bot",
        bot_username: str = "test_bot",
        webhook_retries: int = 3,
        webhook_backoff: float = 0.05,
        webhook_timeout: float = 5.0,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: JsonDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self.webhook_retries = webhook_retries
        self.webhook_backoff = webhook_backoff
        self.webhook_timeout = webhook_timeout
        self.port = 0
        self.webhook: Webhook | None = None
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.undelivered_updates: list[JsonDict] = []
        self.confirmed_offset = 0
        self.offsets: list[int | None] = []
        self.filtered_updates: list[JsonDict] = []
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self.chat_actions: list[ChatAction] = []
        self.closed_by_bot = False
        self.logged_out = False
        self._updates: list[JsonDict] = []
        self._next_update_id = 1000
        self._allowed: set[str] | None = None
        self._calls: list[Call] = []
        self._failures: list[Failure] = []
        self._blocked: set[int] = set()
        self._pressed: set[str] = set()
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._chats: dict[int, _Chat] = {}
        self._people: dict[int, JsonDict] = {}
        self._users: dict[tuple[int, int], FakeUser] = {}
        self._ids = itertools.count(1)
        self._signal = _Signal()
        self._closing = False
        self._poll_generation = 0
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._bots: list[Bot] = []
        self._methods: dict[str, Handler] = self._method_table()

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on 127.0.0.1 at an ephemeral port."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, 0).start()
        self.port = int(self._runner.addresses[0][1])
        self._client = ClientSession()
        self._webhook_task = asyncio.create_task(self._webhook_loop())

    async def close(self) -> None:
        """Answer pending long polls, stop webhook delivery, close bots made by `bot()`."""
        self._closing = True
        self._signal.notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            await asyncio.gather(self._webhook_task, return_exceptions=True)
        for bot in self._bots:
            await bot.session.close()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner, self._client, self._webhook_task = None, None, None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def bot(self, token: str | None = None, **kwargs: Any) -> Bot:
        """An aiogram Bot talking to this server; its session is closed by `close()`."""
        session = LoopbackSession(api=TelegramAPIServer.from_base(self.base_url))
        bot = Bot(token or self.token, session=session, **kwargs)
        self._bots.append(bot)
        return bot

    # ----------------------------------------------------------------- people and chats

    def user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> FakeUser:
        """A user in their private chat with the bot (chat id == user id)."""
        person = self._person(user_id, first_name, last_name, username, language_code)
        info = {"id": user_id, "type": "private", "first_name": person["first_name"]}
        info |= {key: person[key] for key in ("last_name", "username") if key in person}
        return self._member(self._chat(info), person)

    def group(
        self,
        chat_id: int,
        *,
        user_id: int,
        title: str = "Test group",
        first_name: str | None = None,
        language_code: str = "en",
    ) -> FakeUser:
        """A user in a group (a supergroup when the id starts with -100)."""
        person = self._person(user_id, first_name, None, None, language_code)
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return self._member(self._chat({"id": chat_id, "type": kind, "title": title}), person)

    async def channel_post(
        self, chat_id: int, text: str, *, title: str = "Test channel"
    ) -> StoredMessage:
        """A post in a channel the bot is in: a channel_post update."""
        chat = self._chat({"id": chat_id, "type": "channel", "title": title})
        message = chat.add(None, False, _text_content(text))
        self._push_update("channel_post", message.to_api())
        return message

    def messages(self, chat_id: int) -> list[StoredMessage]:
        chat = self._chats.get(chat_id)
        return list(chat.messages) if chat else []

    def transcript(self, chat_id: int) -> str:
        chat = self._chats.get(chat_id)
        return chat.transcript() if chat else "  (no such chat)"

    def block(self, chat_id: int) -> None:
        """The user blocked the bot (or the bot was kicked): sends to the chat answer 403."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def _person(
        self,
        user_id: int,
        first_name: str | None,
        last_name: str | None,
        username: str | None,
        language_code: str,
    ) -> JsonDict:
        if user_id in self._people:
            return self._people[user_id]
        person: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name or "Test"}
        person |= {"last_name": last_name} if last_name else {}
        person |= {"username": username} if username else {}
        person["language_code"] = language_code
        self._people[user_id] = person
        return person

    def _chat(self, info: JsonDict) -> _Chat:
        chat_id = int(info["id"])
        if chat_id not in self._chats:
            self._chats[chat_id] = _Chat(info)
        return self._chats[chat_id]

    def _member(self, chat: _Chat, person: JsonDict) -> FakeUser:
        key = (chat.id, int(person["id"]))
        if key not in self._users:
            self._users[key] = FakeUser(self, chat, person)
        return self._users[key]

    # ----------------------------------------------------------------- updates

    @property
    def pending_updates(self) -> list[JsonDict]:
        """Updates not yet confirmed by an offset (or delivered to the webhook)."""
        return copy.deepcopy(self._updates)

    def deliver_raw(self, update: JsonDict) -> int:
        """Queue an update as given (an `update_id` is added when missing)."""
        update = copy.deepcopy(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        self._enqueue(update)
        return int(update["update_id"])

    def _push_update(self, kind: str, payload: JsonDict) -> int:
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self._enqueue(update)
        return int(update["update_id"])

    def _enqueue(self, update: JsonDict) -> None:
        kind = next((key for key in update if key != "update_id"), "")
        allowed = kind in self._allowed if self._allowed else kind not in _NOT_BY_DEFAULT
        (self._updates if allowed else self.filtered_updates).append(update)
        self._signal.notify()

    def _confirm(self, offset: Any) -> None:
        if not isinstance(offset, int) or offset == 0:
            return
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)
            return
        self._updates = self._updates[offset:]
        if self._updates:
            self.confirmed_offset = max(self.confirmed_offset, self._updates[0]["update_id"])

    def _set_allowed(self, params: JsonDict) -> None:
        if isinstance(params.get("allowed_updates"), list):
            self._allowed = set(params["allowed_updates"]) or None

    # ----------------------------------------------------------------- test hooks

    def fail(
        self,
        method: str,
        status: int = 500,
        *,
        retry_after: int | None = None,
        times: int = 1,
        drop: bool = False,
        drop_after_apply: bool = False,
        delay: float = 0.0,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> Failure:
        """Make the next `times` calls of `method` fail.

        status/description/retry_after give the error answer (429 defaults to retry after 1);
        drop closes the connection without an answer; drop_after_apply performs the call
        (the message IS sent) and then drops the connection; delay holds the answer first.
        """
        failure = Failure(
            method, status, retry_after, times, drop, drop_after_apply, delay, description, chat_id
        )
        self._failures.append(failure)
        return failure

    def slow(self, method: str, seconds: float, *, times: int = 1) -> Failure:
        """Hold the next `times` answers of `method` for `seconds`, then answer normally."""
        return self.fail(method, 200, times=times, delay=seconds)

    def calls(self, method: str | None = None, *, chat_id: int | None = None) -> list[Call]:
        """Every recorded call, optionally of one method (any case) and/or one chat."""
        return [
            call
            for call in self._calls
            if (method is None or call.method.lower() == method.lower())
            and (chat_id is None or call.chat_id == chat_id)
        ]

    def peak_rate(
        self, method: str = "sendMessage", *, chat_id: int | None = None, window: float = 1.0
    ) -> int:
        """The most successful calls of `method` that fell within any `window` seconds."""
        times = sorted(call.at for call in self.calls(method, chat_id=chat_id) if call.ok)
        start, best = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    @property
    def commands(self) -> dict[str, list[JsonDict]]:
        """The default-scope command lists by language code ("" = all languages)."""
        default = json.dumps({"type": "default"}, sort_keys=True)
        return {
            lang: list(cmds) for (scope, lang), cmds in self._commands.items() if scope == default
        }

    def commands_for(
        self, language_code: str = "", scope: JsonDict | None = None
    ) -> list[JsonDict]:
        return list(self._commands.get(self._command_key(scope, language_code), []))

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait, bounded, until `predicate()` holds; it is re-checked on every state change."""
        if not await self._signal.wait_until(predicate, timeout):
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    # ----------------------------------------------------------------- HTTP

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error_response(ApiError(404, "Not Found"))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        call = Call(method, {}, time.monotonic())
        self._calls.append(call)
        try:
            call.params = await _read_params(request)
        except ApiError as error:
            return self._refuse(call, error)
        if request.match_info["token"] != self.token:
            return self._refuse(call, ApiError(401, "Unauthorized"))
        handler = self._methods.get(method.lower())
        if handler is None:
            return self._refuse(call, ApiError(404, METHOD_NOT_FOUND))
        failure = next((f for f in self._failures if f.matches(method, call.params)), None)
        if failure is None:
            return await self._answer(call, handler)
        failure.times -= 1
        return await self._fail(request, call, handler, failure)

    async def _answer(self, call: Call, handler: Handler) -> web.Response:
        try:
            result = await handler(call.params)
        except ApiError as error:
            return self._refuse(call, error)
        except (TypeError, ValueError) as error:
            return self._refuse(call, ApiError(400, f"Bad Request: {error}"))
        answer = result if isinstance(result, Answer) else Answer(result)
        call.status = 200
        body: JsonDict = {"ok": True, "result": answer.result}
        if answer.description:
            body["description"] = answer.description
        return web.json_response(body)

    def _refuse(self, call: Call, error: ApiError) -> web.Response:
        call.status, call.description = error.status, error.description
        return _error_response(error)

    async def _fail(
        self, request: web.Request, call: Call, handler: Handler, failure: Failure
    ) -> web.Response:
        if failure.delay:
            await self._signal.wait_until(lambda: self._closing, failure.delay)
        if failure.status == 200 and not failure.drop:
            return await self._answer(call, handler)  # only slow, see `slow()`
        if not (failure.drop or failure.drop_after_apply):
            return self._refuse(call, failure.error())
        response = await self._answer(call, handler) if failure.drop_after_apply else None
        call.dropped = True
        if request.transport is not None:
            request.transport.close()
        return response or web.Response()

    # ----------------------------------------------------------------- webhook delivery

    async def _webhook_loop(self) -> None:
        while not self._closing:
            await self._signal.wait_until(
                lambda: self._closing or (self.webhook is not None and bool(self._updates)), None
            )
            if not self._closing and self.webhook is not None:
                await self._deliver(self.webhook, self._updates[0])

    async def _deliver(self, hook: Webhook, update: JsonDict) -> None:
        """POST one update; retry a few times with a short backoff, then give it up."""
        for attempt in range(1, self.webhook_retries + 2):
            if await self._attempt(hook, update, attempt):
                break
            if self.webhook is not hook or self._closing:
                return  # the update stays pending
            if attempt <= self.webhook_retries:
                delay = self.webhook_backoff * 2 ** (attempt - 1)
                await self._signal.wait_until(lambda: self._closing, delay)
        else:
            self.undelivered_updates.append(update)
        self._updates = [u for u in self._updates if u is not update]
        self._signal.notify()

    async def _attempt(self, hook: Webhook, update: JsonDict, attempt: int) -> bool:
        status, error = await self._post_update(hook, update)
        self.webhook_deliveries.append(
            WebhookDelivery(update["update_id"], attempt, status, error)
        )
        if error is not None:
            hook.last_error_date, hook.last_error_message = int(time.time()), error
        self._signal.notify()
        return error is None

    async def _post_update(self, hook: Webhook, update: JsonDict) -> tuple[int, str | None]:
        assert self._client is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret} if hook.secret else {}
        timeout = ClientTimeout(total=self.webhook_timeout)
        try:
            async with self._client.post(
                hook.url, json=update, headers=headers, timeout=timeout
            ) as response:
                if not 200 <= response.status < 300:
                    return response.status, (
                        f"Wrong response from the webhook: {response.status} {response.reason}"
                    )
                # Telegram ignores a malformed method in a webhook's answer.
                with contextlib.suppress(ValueError, ClientError):
                    await self._webhook_reply(response)
                return response.status, None
        except TimeoutError:
            return 0, "Read timeout expired"
        except ClientError as error:
            return 0, f"Connection failed: {type(error).__name__}"

    async def _webhook_reply(self, response: ClientResponse) -> None:
        """A webhook may answer with a method call, which Telegram then performs."""
        params: JsonDict = {}
        if response.content_type == "application/json":
            body = await response.json()
            params = body if isinstance(body, dict) else {}
        elif response.content_type == "multipart/form-data":
            reader = MultipartReader(response.headers, response.content)
            while (part := await reader.next()) is not None:
                if part.name and not getattr(part, "filename", None):
                    params[part.name] = await part.text()  # type: ignore[union-attr]
        method = str(params.pop("method", ""))
        handler = self._methods.get(method.lower())
        if handler is None:
            return
        call = Call(method, {}, time.monotonic(), via_webhook=True)
        self._calls.append(call)
        try:
            call.params = {key: _coerce(key, value) for key, value in params.items()}
        except ApiError as error:
            self._refuse(call, error)
            return
        await self._answer(call, handler)

    # ----------------------------------------------------------------- the methods

    def _method_table(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendChatAction": self._send_chat_action,
            "close": self._close,
            "logOut": self._log_out,
        }
        return {name.lower(): handler for name, handler in table.items()}

    async def _get_me(self, params: JsonDict) -> JsonDict:
        return self.bot_user | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JsonDict) -> list[JsonDict]:
        if self.webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        self.offsets.append(params.get("offset"))
        self._confirm(params.get("offset"))
        self._set_allowed(params)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        self._poll_generation += 1
        generation = self._poll_generation
        self._signal.notify()
        await self._signal.wait_until(
            lambda: (
                self._closing
                or generation != self._poll_generation
                or self.webhook is not None
                or bool(self._updates)
            ),
            float(params.get("timeout") or 0),
        )
        if generation != self._poll_generation:
            raise ApiError(409, CONFLICT_POLLING)
        if self.webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        return copy.deepcopy(self._updates[:limit])

    async def _set_webhook(self, params: JsonDict) -> Answer:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params)
        _check_webhook_url(url)
        secret = params.get("secret_token") or None
        if secret is not None and not _SECRET.fullmatch(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._set_allowed(params)
        same = self.webhook is not None and (self.webhook.url, self.webhook.secret) == (
            url,
            secret,
        )
        if not same:
            self.webhook = Webhook(url, secret, int(params.get("max_connections") or 40))
        self._signal.notify()
        return Answer(True, "Webhook is already set" if same else "Webhook was set")

    async def _delete_webhook(self, params: JsonDict) -> Answer:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        existed, self.webhook = self.webhook is not None, None
        self._signal.notify()
        return Answer(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    async def _get_webhook_info(self, params: JsonDict) -> JsonDict:
        info: JsonDict = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        hook = self.webhook
        if hook is None:
            return info
        info |= {"url": hook.url, "max_connections": hook.max_connections, "ip_address": LOOPBACK}
        if self._allowed:
            info["allowed_updates"] = sorted(self._allowed)
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        return info

    def _target(self, params: JsonDict, *, check_blocked: bool = True) -> _Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else self._by_username(chat_id)
        if chat is None:
            raise ApiError(400, CHAT_NOT_FOUND)
        if check_blocked and chat.id in self._blocked:
            kind = chat.info["type"]
            raise ApiError(
                403,
                BLOCKED if kind == "private" else NOT_IN_CHANNEL if kind == "channel" else KICKED,
            )
        return chat

    def _by_username(self, name: Any) -> _Chat | None:
        wanted = str(name).lstrip("@").lower()
        return next(
            (c for c in self._chats.values() if str(c.info.get("username", "")).lower() == wanted),
            None,
        )

    def _reply_target(self, chat: _Chat, params: JsonDict) -> StoredMessage | None:
        reply = params.get("reply_parameters")
        wanted = reply.get("message_id") if isinstance(reply, dict) else None
        wanted = wanted or params.get("reply_to_message_id")
        if not wanted:
            return None
        target = chat.get(wanted)
        lenient = isinstance(reply, dict) and reply.get("allow_sending_without_reply")
        if (target is None or target.deleted) and not lenient:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return None if target is None or target.deleted else target

    async def _send_message(self, params: JsonDict) -> JsonDict:
        chat = self._target(params)
        content = _text_content(_checked_text(params.get("text")))
        markup = _check_markup(params.get("reply_markup"), chat.info)
        reply_to = self._reply_target(chat, params)
        sender = None if chat.info["type"] == "channel" else self.bot_user
        message = chat.add(sender, True, content)
        message.reply_to = reply_to
        if markup is not None and "inline_keyboard" in markup:
            message.inline_markup = markup
        else:
            message.chat_keyboard = markup
        self._bot_event(chat, "sent", message)
        return message.to_api()

    def _bot_event(self, chat: _Chat, kind: str, message: StoredMessage) -> None:
        chat.events.append(_Event(kind, message, message.text))
        self._signal.notify()

    def _editable(self, params: JsonDict) -> tuple[_Chat, StoredMessage]:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = self._target(params)
        if params.get("message_id") is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = chat.get(params.get("message_id"))
        if message is None or message.deleted:
            raise ApiError(400, EDIT_NOT_FOUND)
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat, message

    @staticmethod
    def _inline_markup(params: JsonDict, chat: _Chat) -> JsonDict | None:
        markup = _check_markup(params.get("reply_markup"), chat.info)
        if markup is not None and "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        return markup

    def _apply_edit(
        self, chat: _Chat, message: StoredMessage, text: str | None, markup: JsonDict | None
    ) -> JsonDict:
        if text == message.text and markup == message.inline_markup:
            raise ApiError(400, NOT_MODIFIED)
        message.history.append(message.text)
        if text is not None and text != message.text:
            kept = {k: v for k, v in message.content.items() if k not in {"text", "entities"}}
            message.content = kept | _text_content(text)
        message.inline_markup = markup
        message.edited += 1
        message.edit_date = int(time.time())
        self._bot_event(chat, "edited", message)
        return message.to_api()

    async def _edit_message_text(self, params: JsonDict) -> JsonDict:
        chat, message = self._editable(params)
        text = _checked_text(params.get("text"))
        markup = self._inline_markup(params, chat)
        if "text" not in message.content:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        return self._apply_edit(chat, message, text, markup)

    async def _edit_message_reply_markup(self, params: JsonDict) -> JsonDict:
        chat, message = self._editable(params)
        markup = self._inline_markup(params, chat)
        return self._apply_edit(chat, message, message.text, markup)

    async def _delete_message(self, params: JsonDict) -> bool:
        chat = self._target(params, check_blocked=False)
        message = chat.get(params.get("message_id"))
        if message is None or message.deleted:
            raise ApiError(400, DELETE_NOT_FOUND)
        message.deleted = True
        self._bot_event(chat, "deleted", message)
        return True

    async def _answer_callback_query(self, params: JsonDict) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._pressed or query_id in self.callback_answers:
            raise ApiError(400, QUERY_INVALID)
        self.callback_answers[query_id] = CallbackAnswer(
            query_id,
            params.get("text"),
            bool(params.get("show_alert")),
            params.get("url"),
            time.monotonic(),
        )
        self._signal.notify()
        return True

    @staticmethod
    def _command_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    async def _set_my_commands(self, params: JsonDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise ApiError(400, "Bad Request: can't parse commands JSON object")
            if not _COMMAND.fullmatch(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
        key = self._command_key(params.get("scope"), params.get("language_code"))
        cleaned = [{"command": c["command"], "description": c["description"]} for c in commands]
        self._commands[key] = cleaned
        if not cleaned:
            del self._commands[key]
        self._signal.notify()
        return True

    async def _get_my_commands(self, params: JsonDict) -> list[JsonDict]:
        key = self._command_key(params.get("scope"), params.get("language_code"))
        return copy.deepcopy(self._commands.get(key, []))

    async def _delete_my_commands(self, params: JsonDict) -> bool:
        self._commands.pop(
            self._command_key(params.get("scope"), params.get("language_code")), None
        )
        self._signal.notify()
        return True

    async def _send_chat_action(self, params: JsonDict) -> bool:
        chat = self._target(params)
        action = str(params.get("action") or "")
        if action not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append(ChatAction(chat.id, action, time.monotonic()))
        self._signal.notify()
        return True

    async def _close(self, params: JsonDict) -> bool:
        self.closed_by_bot = True
        return True

    async def _log_out(self, params: JsonDict) -> bool:
        self.logged_out = True
        return True


class FakeUser:
    """One user in one chat (their private chat, or a group): acts, then waits for the bot."""

    def __init__(self, tg: FakeTelegram, chat: _Chat, person: JsonDict) -> None:
        self._tg = tg
        self._chat = chat
        self.user = person
        self._cursor = 0
        self._files = itertools.count(1)
        self.last_callback_id: str | None = None

    @property
    def id(self) -> int:
        return int(self.user["id"])

    @property
    def chat_id(self) -> int:
        return self._chat.id

    @property
    def chat(self) -> JsonDict:
        return dict(self._chat.info)

    # ----------------------------------------------------------------- acting

    async def send(self, text: str, *, reply_to: int | None = None) -> StoredMessage:
        """A text message; `/command` text gets a bot_command entity."""
        return await self.send_content(_text_content(text), reply_to=reply_to)

    async def send_content(
        self, content: JsonDict, *, reply_to: int | None = None
    ) -> StoredMessage:
        """A message with the given content fields (text, contact, sticker, photo, ...)."""
        message = self._chat.add(self.user, False, copy.deepcopy(content))
        message.reply_to = self._chat.get(reply_to) if reply_to is not None else None
        self._tg._push_update("message", message.to_api())
        return message

    async def press(self, label: str, *, message_id: int | None = None) -> str:
        """Press an inline button (by label, else callback data); returns the query id."""
        message = self._pressable(message_id)
        button = message.inline_button(label)
        if button is None or "callback_data" not in button:
            raise AssertionError(
                f"no callback button {label!r} on message #{message.message_id}; "
                f"buttons: {message.buttons}\n{self.transcript()}"
            )
        query_id = str(10**15 + next(self._tg._ids))
        query = {
            "id": query_id,
            "from": dict(self.user),
            "message": message.to_api(),
            "chat_instance": str(10**12 + abs(self.chat_id)),
            "data": button["callback_data"],
        }
        self._tg._pressed.add(query_id)
        self.last_callback_id = query_id
        self._tg._push_update("callback_query", query)
        return query_id

    async def share_contact(
        self,
        *,
        own: bool = True,
        phone: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        user_id: int | None = None,
    ) -> StoredMessage:
        """Share a contact: one's own (with user_id, as the request_contact button does)."""
        contact: JsonDict = {
            "phone_number": phone or f"+99890{self.id % 10**7:07d}",
            "first_name": first_name or (self.user["first_name"] if own else "Contact"),
        }
        surname = last_name or (self.user.get("last_name") if own else None)
        contact |= {"last_name": surname} if surname else {}
        owner = self.id if own else user_id
        contact |= {"user_id": owner} if owner is not None else {}
        return await self.send_content({"contact": contact})

    async def send_sticker(self, emoji: str = "👍") -> StoredMessage:
        sticker = self._file("CAACAgI") | {
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self.send_content({"sticker": sticker})

    async def send_photo(self, caption: str | None = None) -> StoredMessage:
        sizes = [(90, 67), (320, 240), (800, 600)]
        photo = [
            self._file("AgACAgI") | {"width": w, "height": h, "file_size": w * h // 10}
            for w, h in sizes
        ]
        return await self.send_content(self._captioned({"photo": photo}, caption))

    async def send_document(
        self,
        file_name: str = "report.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> StoredMessage:
        document = self._file("BQACAgI") | {
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": 12345,
        }
        return await self.send_content(self._captioned({"document": document}, caption))

    async def send_voice(self, duration: int = 3) -> StoredMessage:
        voice = self._file("AwACAgI") | {
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": 4000 * duration,
        }
        return await self.send_content({"voice": voice})

    async def send_location(
        self, latitude: float = 41.311081, longitude: float = 69.240562
    ) -> StoredMessage:
        return await self.send_content(
            {"location": {"latitude": latitude, "longitude": longitude}}
        )

    async def edit_last(self, text: str) -> StoredMessage:
        """Edit this user's latest text message: an edited_message update."""
        mine = [m for m in self._chat.messages if self._is_mine(m) and "text" in m.content]
        if not mine:
            raise AssertionError(f"user {self.id} has no text message to edit")
        message = mine[-1]
        message.history.append(message.text)
        message.content = _text_content(text)
        message.edited += 1
        message.edit_date = int(time.time())
        self._tg._push_update("edited_message", message.to_api())
        return message

    # ----------------------------------------------------------------- looking

    @property
    def messages(self) -> list[StoredMessage]:
        return list(self._chat.messages)

    @property
    def bot_messages(self) -> list[StoredMessage]:
        return [m for m in self._chat.messages if m.from_bot]

    @property
    def last_bot_message(self) -> StoredMessage | None:
        """The newest bot message that is not deleted."""
        return next((m for m in reversed(self.bot_messages) if not m.deleted), None)

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """The reply keyboard the bot shows in this chat now (None when none or removed)."""
        markup = self._current_keyboard()
        return markup.keyboard if markup is not None else None

    @property
    def contact_requested(self) -> bool:
        markup = self._current_keyboard()
        return markup is not None and markup.requests_contact

    def transcript(self) -> str:
        return f"chat {self.chat_id}:\n{self._chat.transcript()}"

    # ----------------------------------------------------------------- waiting

    async def wait_for_message(
        self,
        contains: str | None = None,
        *,
        timeout: float = 5.0,
        edits: bool = True,
        match: Callable[[StoredMessage], bool] | None = None,
    ) -> StoredMessage:
        """The next bot message (sent, or edited when `edits`) after the previous wait's one.

        Waits, bounded by `timeout`, for one whose text contains `contains` and that `match`
        accepts; earlier non-matching ones are skipped.
        """
        kinds = {"sent", "edited"} if edits else {"sent"}

        def accepts(event: _Event) -> bool:
            text_ok = contains is None or contains in (event.text or "")
            return event.kind in kinds and text_ok and (match is None or match(event.message))

        found: list[StoredMessage] = []

        def ready() -> bool:
            for index in range(self._cursor, len(self._chat.events)):
                if accepts(self._chat.events[index]):
                    self._cursor = index + 1
                    found.append(self._chat.events[index].message)
                    return True
            return False

        if not await self._tg._signal.wait_until(ready, timeout):
            raise AssertionError(
                f"no bot message containing {contains!r} within {timeout}s; {self.transcript()}"
            )
        return found[0]

    async def wait_for_answer(
        self, callback_id: str | None = None, *, timeout: float = 5.0
    ) -> CallbackAnswer:
        """The bot's answerCallbackQuery for `callback_id` (default: this user's last press)."""
        query_id = callback_id or self.last_callback_id
        if query_id is None:
            raise AssertionError(f"user {self.id} pressed no button")
        answers = self._tg.callback_answers
        if not await self._tg._signal.wait_until(lambda: query_id in answers, timeout):
            raise AssertionError(
                f"callback {query_id} was not answered within {timeout}s; {self.transcript()}"
            )
        return answers[query_id]

    # ----------------------------------------------------------------- helpers

    def _is_mine(self, message: StoredMessage) -> bool:
        return not message.from_bot and (message.sender or {}).get("id") == self.id

    def _pressable(self, message_id: int | None) -> StoredMessage:
        if message_id is not None:
            message = self._chat.get(message_id)
        else:
            keyed = [m for m in self.bot_messages if m.inline_markup and not m.deleted]
            message = keyed[-1] if keyed else None
        if message is None or message.deleted or not message.from_bot:
            raise AssertionError(f"no bot message with buttons to press; {self.transcript()}")
        return message

    def _current_keyboard(self) -> StoredMessage | None:
        shown = [m for m in self.bot_messages if m.chat_keyboard is not None]
        if not shown or shown[-1].removes_keyboard or not shown[-1].keyboard:
            return None
        return shown[-1]

    def _file(self, prefix: str) -> JsonDict:
        number = next(self._tg._ids)
        return {"file_id": f"{prefix}{number:08d}", "file_unique_id": f"AQAD{number:08d}"}

    @staticmethod
    def _captioned(content: JsonDict, caption: str | None) -> JsonDict:
        return content | {"caption": caption} if caption else content
