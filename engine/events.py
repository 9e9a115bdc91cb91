"""Events: what the world tells a conversation, whatever adapter it came through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EventKind = Literal["text", "command", "button", "contact", "media", "timer"]


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str
    user_id: int | None = None
    first_name: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a user did (or a timer that fell due) in one chat.

    `value` is the button's callback data for `button`, the command (`/start`)
    for `command`, and the media kind (`photo`, `sticker`, ...) for `media`.
    `message_id` is the bot message a button belongs to; stale buttons are
    recognised by it.
    """

    chat_id: int
    kind: EventKind
    user_id: int | None = None
    text: str = ""
    value: str = ""
    contact: Contact | None = None
    media_id: str = ""
    message_id: int | None = None
    callback_id: str | None = None
    user_name: str = ""
    language_code: str = ""
    step: int | None = field(default=None, compare=False)

    @property
    def sender(self) -> int:
        return self.user_id if self.user_id is not None else self.chat_id
