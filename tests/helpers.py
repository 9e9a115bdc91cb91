"""A user and a bot in one process: the engine, the demo backend and a recording channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapters.demo_backend import DemoBackend
from engine import custom
from engine.actions import Action, Button, EditMessage, RecordingChannel, SendMessage
from engine.backend import Backend
from engine.config import load_settings
from engine.events import Contact, Event
from engine.loader import load_flows
from engine.outbox import MemoryOutbox
from engine.runtime import Engine
from engine.storage import MemoryStore

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = load_settings(ROOT / "config.yaml", environ={})


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Bot:
    engine: Engine
    channel: RecordingChannel
    demo: DemoBackend
    clock: Clock
    seen: int = field(default=0)

    def said(self) -> list[Action]:
        """What the bot did since the last call."""
        new = self.channel.actions[self.seen :]
        self.seen = len(self.channel.actions)
        return new

    def texts(self) -> list[str]:
        return [a.text for a in self.said() if isinstance(a, SendMessage | EditMessage)]

    def last_buttons(self) -> tuple[int, list[Button]]:
        for index in range(len(self.channel.actions) - 1, -1, -1):
            action = self.channel.actions[index]
            if isinstance(action, SendMessage) and action.buttons:
                return _message_id(self.channel, index), [b for r in action.buttons for b in r]
            if isinstance(action, EditMessage) and action.buttons:
                return action.message_id, [b for r in action.buttons for b in r]
        raise AssertionError("no message with buttons")


def _message_id(channel: RecordingChannel, index: int) -> int:
    sends = [a for a in channel.actions[: index + 1] if isinstance(a, SendMessage)]
    return len(sends)


def make_bot(
    flow_dir: Path = ROOT / "flows", main: str = "feedback", admins: frozenset[int] = frozenset()
) -> Bot:
    custom.load_action_modules([ROOT / "flows" / "actions.py"])
    flows = load_flows([flow_dir], SETTINGS.backend.endpoints, custom.REGISTRY)
    channel, demo, clock = RecordingChannel(), DemoBackend(), Clock()
    engine = Engine(
        flows,
        main_flow=main,
        store=MemoryStore(),
        backend=Backend(SETTINGS.backend.endpoints, demo, MemoryOutbox()),
        channel=channel,
        expire_after=SETTINGS.expire_after,
        admin_ids=admins,
        clock=clock,
    )
    return Bot(engine, channel, demo, clock)


def text(chat: int, words: str, name: str = "Ali") -> Event:
    return Event(chat, "text", user_id=chat, text=words, user_name=name)


def command(chat: int, name: str) -> Event:
    return Event(chat, "command", user_id=chat, value=name)


def press(chat: int, message_id: int, value: str, callback: str = "cb") -> Event:
    return Event(
        chat, "button", user_id=chat, value=value, message_id=message_id, callback_id=callback
    )


def contact(chat: int, phone: str, owner: int | None = None) -> Event:
    return Event(chat, "contact", user_id=chat, contact=Contact(phone, owner or chat))
