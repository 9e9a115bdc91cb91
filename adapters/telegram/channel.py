"""Engine actions as Bot API calls, within Telegram's limits, surviving its refusals.

What Telegram may answer, and what we do (each has a test against the fake server):

    429 retry_after           wait that long and send again; nothing is dropped
    5xx, connection refused   retry with backoff: the request was not carried out
    dropped / timed out read  a send may have been delivered: not resent (a duplicate
                              message is a visible bug); edits and answers are resent
    403 blocked               RecipientGone: the engine ends that conversation
    "message is not modified" nothing to do
    "message to edit not found"  send a new message instead
    text over 4096 characters split at paragraph, line or word boundaries
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods.base import Response
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from aiohttp import ClientConnectorError
from aiolimiter import AsyncLimiter
from loguru import logger

from engine.actions import (
    Action,
    AnswerButton,
    Button,
    EditMessage,
    Keyboard,
    SendMessage,
    ShowTyping,
)
from engine.config import TelegramConfig
from engine.errors import RecipientGone

# aiogram builds `Response[<type>]` for every answer it reads, and pydantic keeps those
# classes only weakly: after a garbage collection each is built again (5-9 % of the bot's CPU
# in benchmarks/telegram.py). Holding the ones we use keeps them built.
_RESPONSE_TYPES = [
    Response[Message],
    Response[bool],
    Response[Message | bool],
    Response[list[Update]],
    Response[User],
]

TEXT_LIMIT = 4096  # characters; Bot API, sendMessage.text
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 10.0
BURST_WINDOW = 1.0  # seconds; a chat's burst is counted within this window

T = TypeVar("T")
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


class TelegramChannel:
    """The engine's `Channel` on a Bot API client."""

    def __init__(self, bot: Bot, config: TelegramConfig) -> None:
        self.bot = bot
        self.config = config
        self._global = AsyncLimiter(config.global_per_second, 1)
        self._chats: dict[int, _Pace] = {}
        self._answered: dict[str, asyncio.TimerHandle | None] = {}
        self._late: set[asyncio.Task[None]] = set()

    async def deliver(self, action: Action) -> int | None:
        if isinstance(action, SendMessage):
            return await self.send(action.chat_id, action.text, _markup(action))
        if isinstance(action, EditMessage):
            return await self.edit(action)
        if isinstance(action, AnswerButton):
            await self.answer(action.callback_id, action.notice)
        elif isinstance(action, ShowTyping):
            await self._quietly(self.bot.send_chat_action(action.chat_id, "typing"))
        return None

    # -- sending ------------------------------------------------------------------------

    async def send(self, chat_id: int, text: str, markup: Markup) -> int | None:
        """Send `text` (split when too long; the markup rides on the last part)."""
        parts = split_text(text)
        message_id = None
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            pace = await self._wait_turn(chat_id)
            try:
                message = await self._call(
                    lambda part=part, last=last: self.bot.send_message(
                        chat_id, part, reply_markup=markup if last else None
                    ),
                    chat_id=chat_id,
                    what="sendMessage",
                    repeatable=False,
                )
            finally:
                pace.answered()
            message_id = message.message_id if message is not None else None
        return message_id

    async def edit(self, action: EditMessage) -> int | None:
        markup = _inline(action.buttons)
        if len(action.text) > TEXT_LIMIT:
            return await self.send(action.chat_id, action.text, markup)
        try:
            await self._call(
                lambda: self.bot.edit_message_text(
                    action.text,
                    chat_id=action.chat_id,
                    message_id=action.message_id,
                    reply_markup=markup,
                ),
                chat_id=action.chat_id,
                what="editMessageText",
                repeatable=True,
            )
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message:
                return action.message_id
            if "message to edit not found" in exc.message or "can't be edited" in exc.message:
                logger.bind(chat=action.chat_id).info("message to edit is gone; sending anew")
                return await self.send(action.chat_id, action.text, markup)
            raise
        return action.message_id

    # -- buttons ------------------------------------------------------------------------

    def answer_soon(self, callback_id: str) -> None:
        """Make sure a pressed button is answered within the configured time, whatever
        the engine is doing (a double tap may wait behind a slow backend call)."""
        self._answered[callback_id] = asyncio.get_running_loop().call_later(
            self.config.answer_buttons_within, self._answer_late, callback_id
        )

    def _answer_late(self, callback_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self.answer(callback_id, None))
        self._late.add(task)  # a task nobody holds may be collected before it is done
        task.add_done_callback(self._late.discard)

    async def answer(self, callback_id: str, notice: str | None) -> None:
        handle = self._answered.get(callback_id, False)
        if handle is None:
            return  # answered already
        if handle:
            handle.cancel()
        self._answered[callback_id] = None
        if len(self._answered) > 10_000:
            self._forget_answers()
        await self._quietly(self.bot.answer_callback_query(callback_id, text=notice))

    def _forget_answers(self) -> None:
        for key in [k for k, v in self._answered.items() if v is None][:5_000]:
            del self._answered[key]

    # -- limits and retries -------------------------------------------------------------

    async def _wait_turn(self, chat_id: int) -> _Pace:
        """About one message a second per chat (bursts allowed), 30 a second overall."""
        pace = self._chats.get(chat_id)
        if pace is None:
            if len(self._chats) > 10_000:
                now = time.monotonic()
                self._chats = {k: v for k, v in self._chats.items() if now - v.used < 60}
            config = self.config
            pace = self._chats[chat_id] = _Pace(config.per_chat_burst, config.per_chat_per_second)
        await pace.turn()
        await self._global.acquire()
        return pace

    async def _call(
        self, make: Callable[[], Awaitable[T]], *, chat_id: int, what: str, repeatable: bool
    ) -> T | None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await make()
            except TelegramRetryAfter as exc:
                log = logger.bind(chat=chat_id, method=what)
                log.warning("Telegram asks to wait {}s (429); sending again then", exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError as exc:
                raise RecipientGone(chat_id, f"Telegram says: {exc.message}") from exc
            except TelegramServerError as exc:
                delay = _backoff(attempt)
                log = logger.bind(chat=chat_id, method=what)
                log.warning(
                    "Telegram answered {} ({}); retry {} in {:.1f}s",
                    type(exc).__name__,
                    exc.message,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
            except TelegramNetworkError as exc:
                log = logger.bind(chat=chat_id, method=what)
                if not repeatable and not isinstance(exc.__cause__, ClientConnectorError):
                    log.warning(
                        "the HTTP client lost the answer ({}); the message may have "
                        "been delivered, so it is not sent again",
                        exc.message,
                    )
                    return None
                delay = _backoff(attempt)
                log.warning(
                    "the HTTP client failed ({}); retry {} in {:.1f}s", exc.message, attempt, delay
                )
                await asyncio.sleep(delay)
        logger.bind(chat=chat_id, method=what).error(
            "Telegram kept failing; {} given up after {} attempts", what, MAX_ATTEMPTS
        )
        return None

    async def _quietly(self, call: Awaitable[Any]) -> None:
        """Answers and chat actions matter little: a failure is logged, never raised."""
        try:
            await call
        except Exception as exc:
            logger.debug("Telegram call failed and is not retried: {}", exc)


class _Pace:
    """One chat's sends: about `per_second` a second in bursts of at most `burst`.

    The bucket alone counts from when sends leave; Telegram counts from when they
    arrive, a little later for some than for others. So a send also waits a second
    after the answer to the send `burst` places before it: it then arrives more than
    a second after that one did, and no second at Telegram holds more than `burst`.
    """

    __slots__ = ("_answers", "_bucket", "_window", "used")

    def __init__(self, burst: int, per_second: float) -> None:
        self._bucket = AsyncLimiter(burst, burst / per_second)
        self._answers: deque[float] = deque(maxlen=burst)
        # Telegram's second, unless the configured pace is looser than a burst a second.
        self._window = min(BURST_WINDOW, burst / per_second)
        self.used = time.monotonic()

    async def turn(self) -> None:
        self.used = time.monotonic()
        await self._bucket.acquire()
        if len(self._answers) == self._answers.maxlen:
            wait = self._answers[0] + self._window - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    def answered(self) -> None:
        self._answers.append(time.monotonic())


def _backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Parts of at most `limit` characters, each cut at the last blank line, else line end,
    else space in the second half of its allowed length; mid-word only when there is none."""
    parts: list[str] = []
    while len(text) > limit:
        cut = _cut(text, limit)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    parts.append(text)
    return [part for part in parts if part] or [""]


def _cut(text: str, limit: int) -> int:
    for separator in ("\n\n", "\n", " "):
        at = text.rfind(separator, limit // 2, limit + 1)
        if at > 0:
            return at
    return limit


def _markup(action: SendMessage) -> Markup:
    if action.buttons:
        return _inline(action.buttons)
    if action.keyboard is not None:
        return _reply(action.keyboard)
    if action.remove_keyboard:
        return ReplyKeyboardRemove()
    return None


def _inline(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=b.data) for b in row] for row in rows
        ]
    )


def _reply(keyboard: Keyboard) -> ReplyKeyboardMarkup:
    rows = [
        [KeyboardButton(text=b.label, request_contact=b.share_contact or None) for b in row]
        for row in keyboard.rows
    ]
    return ReplyKeyboardMarkup(
        keyboard=rows, resize_keyboard=True, is_persistent=keyboard.persistent or None
    )
