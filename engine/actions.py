"""Actions: what a conversation asks the world to do, in no adapter's terms.

An adapter implements `Channel.deliver`; it returns the id of a message it
sent or edited, which the engine keeps to recognise stale buttons and to
edit messages in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button; `data` is what comes back when it is pressed (at most 64 bytes)."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class KeyButton:
    """A reply-keyboard button; `share_contact` asks the client to send the user's contact."""

    label: str
    share_contact: bool = False


@dataclass(frozen=True, slots=True)
class Keyboard:
    rows: tuple[tuple[KeyButton, ...], ...]
    persistent: bool = False


@dataclass(frozen=True, slots=True)
class SendMessage:
    chat_id: int
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    keyboard: Keyboard | None = None
    remove_keyboard: bool = False


@dataclass(frozen=True, slots=True)
class EditMessage:
    chat_id: int
    message_id: int
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class AnswerButton:
    """Every pressed button is answered; `notice` is a short toast such as 'outdated button'."""

    callback_id: str
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class ShowTyping:
    chat_id: int


Action = SendMessage | EditMessage | AnswerButton | ShowTyping


class Channel(Protocol):
    """The adapter's side: carry an action out, return the message id it produced."""

    async def deliver(self, action: Action) -> int | None: ...


@dataclass(slots=True)
class RecordingChannel:
    """A channel that keeps what it was asked and numbers messages; for chat and replays."""

    actions: list[Action] = field(default_factory=list)
    next_id: int = 1

    async def deliver(self, action: Action) -> int | None:
        self.actions.append(action)
        if isinstance(action, SendMessage):
            self.next_id += 1
            return self.next_id - 1
        if isinstance(action, EditMessage):
            return action.message_id
        return None
