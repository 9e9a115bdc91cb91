"""The terminal chat: hold a flow's conversation in a terminal, or replay one from stdin.

Bot messages are printed with their buttons numbered. The user types text, a
button's number (or `:press LABEL`), `k1` for reply-keyboard button 1, a
command, or one of the `:` verbs below. Piped input is echoed, so the output
reads as a transcript.

    :contact [PHONE]   share your own contact (or a number as your own)
    :contact-other PHONE   share someone else's contact
    :photo :sticker :voice :document :video :location   send media
    :quit              leave
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from engine.actions import (
    Action,
    AnswerButton,
    Button,
    EditMessage,
    Keyboard,
    SendMessage,
    ShowTyping,
)
from engine.events import Contact, Event
from engine.inputs import MEDIA_KINDS

HELP = __doc__.split("\n\n", 2)[2]


@dataclass
class TerminalChannel:
    """Prints what the bot does; remembers the buttons on screen for the next input."""

    out: TextIO
    next_id: int = 1
    buttons: dict[int, list[Button]] = field(default_factory=dict)
    keyboard: Keyboard | None = None
    last_with_buttons: int | None = None

    async def deliver(self, action: Action) -> int | None:
        if isinstance(action, SendMessage):
            message_id, self.next_id = self.next_id, self.next_id + 1
            self._print(action.text, action.buttons, edited=False)
            if action.keyboard is not None or action.remove_keyboard:
                self.keyboard = action.keyboard
                self._print_keyboard()
            self._remember(message_id, action.buttons)
            return message_id
        if isinstance(action, EditMessage):
            self._print(action.text, action.buttons, edited=True)
            self._remember(action.message_id, action.buttons)
            return action.message_id
        if isinstance(action, AnswerButton) and action.notice:
            self.out.write(f"  (notice: {action.notice})\n")
        if isinstance(action, ShowTyping):
            pass
        return None

    def _remember(self, message_id: int, buttons: tuple[tuple[Button, ...], ...]) -> None:
        """Numbers typed press the buttons of the latest message, if it has any; once a
        message without buttons follows, a number is an answer (a course, an age)."""
        flat = [button for row in buttons for button in row]
        self.buttons[message_id] = flat
        if flat:
            self.last_with_buttons = message_id
        elif message_id >= (self.last_with_buttons or 0):
            self.last_with_buttons = None

    def _print(self, text: str, rows: tuple[tuple[Button, ...], ...], edited: bool) -> None:
        label = "bot (edited)" if edited else "bot"
        lines = text.splitlines() or [""]
        self.out.write(f"{label}: {lines[0]}\n")
        for line in lines[1:]:
            self.out.write(f"     {line}\n")
        number = 1
        for row in rows:
            cells = []
            for button in row:
                cells.append(f"[{number}] {button.label}")
                number += 1
            self.out.write("     " + "   ".join(cells) + "\n")
        self.out.flush()

    def _print_keyboard(self) -> None:
        if self.keyboard is None:
            self.out.write("     (keyboard removed)\n")
            return
        keys = [b for row in self.keyboard.rows for b in row]
        cells = [
            f"(k{i}) {b.label}" + (" [shares your contact]" if b.share_contact else "")
            for i, b in enumerate(keys, 1)
        ]
        self.out.write("     keyboard: " + "   ".join(cells) + "\n")
        self.out.flush()


@dataclass
class TerminalUser:
    """Turns a typed line into an event, as Telegram would deliver it."""

    channel: TerminalChannel
    chat_id: int
    phone: str
    name: str = "Terminal user"
    _callbacks: int = 0

    def event(self, line: str) -> Event | str | None:
        """The event for a line; a string is a message for the user (bad input); None: quit."""
        line = line.strip()
        base = {"chat_id": self.chat_id, "user_id": self.chat_id, "user_name": self.name}
        if line in (":quit", ":q"):
            return None
        if line.startswith("/"):
            command, _, rest = line.partition(" ")
            return Event(kind="command", value=command.split("@")[0].lower(), text=rest, **base)
        if line.startswith(":"):
            return self._verb(line[1:], base)
        if line[:1] == "k" and line[1:].isdigit() and self.channel.keyboard:
            return self._key(int(line[1:]), base)
        shown = self.channel.buttons.get(self.channel.last_with_buttons or -1, [])
        if line.isdigit() and 1 <= int(line) <= len(shown) and len(line) <= 2:
            return self._press(shown[int(line) - 1], base)
        return Event(kind="text", text=line, **base)

    def _verb(self, verb_line: str, base: dict) -> Event | str:
        verb, _, argument = verb_line.partition(" ")
        if verb == "contact":
            return Event(
                kind="contact", contact=Contact(argument or self.phone, self.chat_id), **base
            )
        if verb == "contact-other":
            return Event(
                kind="contact",
                contact=Contact(argument or "+998900000000", self.chat_id + 1),
                **base,
            )
        if verb == "press":
            shown = self.channel.buttons.get(self.channel.last_with_buttons or -1, [])
            for button in shown:
                if argument in (button.label, button.data) or argument in button.label:
                    return self._press(button, base)
            return f"no button {argument!r} on screen"
        if verb in MEDIA_KINDS:
            return Event(kind="media", value=verb, media_id=f"demo-{verb}", **base)
        return f"unknown verb :{verb}\n{HELP}"

    def _key(self, number: int, base: dict) -> Event | str:
        keys = [b for row in self.channel.keyboard.rows for b in row]
        if not 1 <= number <= len(keys):
            return f"no keyboard button k{number}"
        key = keys[number - 1]
        if key.share_contact:
            return Event(kind="contact", contact=Contact(self.phone, self.chat_id), **base)
        return Event(kind="text", text=key.label, **base)

    def _press(self, button: Button, base: dict) -> Event:
        self._callbacks += 1
        return Event(
            kind="button",
            value=button.data,
            message_id=self.channel.last_with_buttons,
            callback_id=f"cb{self._callbacks}",
            **base,
        )


async def chat(
    handle: Callable[[Event], object],
    user: TerminalUser,
    source: TextIO,
    out: TextIO,
    *,
    echo: bool,
) -> None:
    """Read lines until end of input or `:quit`, handing each event to the engine."""
    loop = asyncio.get_running_loop()
    while True:
        if not echo:
            out.write("you> ")
            out.flush()
        line = await loop.run_in_executor(None, source.readline)
        if not line:
            break
        if not line.strip():
            continue
        if echo:
            out.write(f"you: {line.strip()}\n")
        event = user.event(line)
        if event is None:
            break
        if isinstance(event, str):
            out.write(f"  ({event})\n")
            continue
        await handle(event)
    out.flush()


def interactive(stream: TextIO = sys.stdin) -> bool:
    return stream.isatty()
