"""Transcript tests: recorded conversations replayed against the engine and the demo backend.

A transcript is a YAML file: who the user is, then steps. Each step is one
thing the user does (`send`, `press`, `contact`, `media`, `wait`) and what
must follow: the bot's messages in order (`bot`), a button's notice
(`notice`), backend calls with payload fields (`calls`), and where the
conversation stands (`state`, `data`). Time is virtual: `wait: 31m` moves the
clock, fires due timers and sweeps idle conversations, with no sleeping.
`docs/transcripts.md` describes the format.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.app import build_engine
from adapters.demo_backend import DemoBackend
from engine.actions import Action, AnswerButton, Button, EditMessage, Keyboard, SendMessage
from engine.backend import Backend
from engine.config import Settings, load_settings
from engine.events import Contact, Event
from engine.outbox import MemoryOutbox
from engine.runtime import Engine
from engine.schema import parse_duration

START_TIME = 1_800_000_000.0


class TranscriptFailure(AssertionError):
    """A step did not go as recorded: `step` is 1-based, `detail` says what differed."""

    def __init__(self, file: str, step: int, action: str, detail: str) -> None:
        self.file, self.step, self.detail = file, step, detail
        super().__init__(f"{file}: step {step} ({action}): {detail}")


@dataclass
class _Message:
    id: int
    text: str
    buttons: list[Button]
    edited: bool = False
    rows: list[list[str]] = field(default_factory=list)
    keyboard: Keyboard | None = None
    keyboard_removed: bool = False


@dataclass
class TranscriptChannel:
    """Keeps what the bot did in this step, and the buttons of every message."""

    step_actions: list[Action] = field(default_factory=list)
    buttons: dict[int, list[Button]] = field(default_factory=dict)
    with_buttons: list[int] = field(default_factory=list)
    keyboard: Keyboard | None = None
    next_id: int = 100

    async def deliver(self, action: Action) -> int | None:
        self.step_actions.append(action)
        if isinstance(action, SendMessage):
            self.next_id += 1
            self._remember(self.next_id, action.buttons)
            if action.keyboard is not None or action.remove_keyboard:
                self.keyboard = action.keyboard
            return self.next_id
        if isinstance(action, EditMessage):
            self._remember(action.message_id, action.buttons)
            return action.message_id
        return None

    def _remember(self, message_id: int, rows: tuple[tuple[Button, ...], ...]) -> None:
        flat = [b for row in rows for b in row]
        self.buttons[message_id] = flat
        if message_id in self.with_buttons:
            self.with_buttons.remove(message_id)
        if flat:
            self.with_buttons.append(message_id)

    def messages(self) -> list[_Message]:
        out = []
        for action in self.step_actions:
            if isinstance(action, SendMessage | EditMessage):
                rows = [[b.label for b in row] for row in action.buttons]
                flat = [b for row in action.buttons for b in row]
                edited = isinstance(action, EditMessage)
                message = _Message(
                    action.message_id if edited else 0, action.text, flat, edited=edited, rows=rows
                )
                if isinstance(action, SendMessage):
                    message.keyboard = action.keyboard
                    message.keyboard_removed = action.remove_keyboard
                out.append(message)
        return out

    def notices(self) -> list[str | None]:
        return [a.notice for a in self.step_actions if isinstance(a, AnswerButton)]


class Replay:
    """One transcript being replayed."""

    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        user = self.spec.get("user") or {}
        self.user_id = int(user.get("id", 1001))
        self.user_name = str(user.get("name", "Test User"))
        self.phone = str(user.get("phone", "+998901234567"))
        self.now = START_TIME
        self.channel = TranscriptChannel()
        self.demo = DemoBackend()
        self.demo.down = set(self.spec.get("down", ()))
        overrides = {"admin_ids": self.spec.get("admins", [])}
        self.engine: Engine = build_engine(
            settings.model_copy(update=overrides),
            self.channel,
            backend=Backend(settings.backend.endpoints, self.demo, MemoryOutbox()),
            clock=lambda: self.now,
        )
        self.callbacks = 0

    async def run(self) -> None:
        try:
            for number, step in enumerate(self.spec.get("steps") or [], 1):
                await self.step(number, step)
            await self.engine.drain()
        finally:
            await self.engine.backend.close()

    async def step(self, number: int, step: dict[str, Any]) -> None:
        self.channel.step_actions.clear()
        calls_before = len(self.demo.calls)
        if "down" in step:
            self.demo.down = set(step["down"] or ())
        if "refuse" in step:
            self.demo.refusing = set(step["refuse"] or ())
        label = self.do(number, step)
        if isinstance(label, Event):
            await self.engine.handle(label)
            label = _describe(step)
        else:
            await self.wait(parse_duration(step["wait"]))
        await self.engine.drain()
        await self.check(number, label, step, self.demo.calls[calls_before:])

    def do(self, number: int, step: dict[str, Any]) -> Event | str:
        base = {"chat_id": self.user_id, "user_id": self.user_id, "user_name": self.user_name}
        if "send" in step:
            text = str(step["send"])
            if text.startswith("/"):
                command, _, rest = text.partition(" ")
                return Event(kind="command", value=command.lower(), text=rest, **base)
            return Event(kind="text", text=text, **base)
        if "press" in step:
            return self.press(number, step["press"], base)
        if "contact" in step:
            return self.contact(step["contact"], base)
        if "media" in step:
            return Event(kind="media", value=str(step["media"]), media_id="file-1", **base)
        if "wait" in step:
            return f"wait {step['wait']}"
        raise TranscriptFailure(str(self.path), number, "?", f"unknown step {step!r}")

    def press(self, number: int, target: Any, base: dict[str, Any]) -> Event:
        older = isinstance(target, dict) and target.get("message") == "older"
        wanted = str(target["button"] if isinstance(target, dict) else target)
        ids = self.channel.with_buttons
        if len(ids) < (2 if older else 1):
            raise TranscriptFailure(
                str(self.path), number, f"press {wanted}", "no message with buttons to press"
            )
        message_id = ids[-2] if older else ids[-1]
        buttons = self.channel.buttons[message_id]
        found = [b for b in buttons if wanted in (b.label, b.data)] or [
            b for b in buttons if wanted in b.label
        ]
        if not found:
            labels = ", ".join(b.label for b in buttons)
            raise TranscriptFailure(
                str(self.path), number, f"press {wanted}", f"no button {wanted!r}; shown: {labels}"
            )
        self.callbacks += 1
        return Event(
            kind="button",
            value=found[0].data,
            message_id=message_id,
            callback_id=f"cb{self.callbacks}",
            **base,
        )

    def contact(self, target: Any, base: dict[str, Any]) -> Event:
        if target == "own":
            return Event(kind="contact", contact=Contact(self.phone, self.user_id), **base)
        if isinstance(target, dict):
            owner = self.user_id if target.get("own", True) else self.user_id + 1
            return Event(kind="contact", contact=Contact(str(target["phone"]), owner), **base)
        return Event(kind="contact", contact=Contact(str(target), self.user_id), **base)

    async def wait(self, seconds: float) -> None:
        self.now += seconds
        await self.engine.fire_due_timers()
        await self.engine.sweep()
        await self.engine.backend.deliver_queued()

    # -- checking -----------------------------------------------------------------------

    async def check(
        self,
        number: int,
        label: str,
        step: dict[str, Any],
        calls: list[dict],
    ) -> None:
        def fail(detail: str) -> None:
            raise TranscriptFailure(str(self.path), number, label, detail)

        if "bot" in step:
            _check_messages(self.channel.messages(), step["bot"] or [], fail)
        if "notice" in step:
            notices = [n for n in self.channel.notices() if n]
            expected = step["notice"]
            if expected is None and notices:
                fail(f"expected no notice, got {notices}")
            if expected is not None and not any(str(expected) in n for n in notices):
                fail(f"expected a notice containing {expected!r}, got {notices or 'none'}")
        if "calls" in step:
            _check_calls(calls, step["calls"] or [], fail)
        await self.check_conversation(step, fail)

    async def check_conversation(self, step: dict[str, Any], fail: Any) -> None:
        if "state" not in step and "data" not in step:
            return
        current = await self.engine.store.load(self.user_id)
        if current is None:
            if step.get("state") not in (None, "none"):
                fail(f"expected state {step['state']!r}, but there is no conversation")
            return
        where = f"{current.flow}.{current.state}"
        expected = step.get("state")
        if expected is not None and expected not in (where, current.state):
            fail(f"expected state {expected!r}, conversation is at {where!r}")
        for key, value in (step.get("data") or {}).items():
            actual = current.language if key == "language" else current.data.get(key)
            if actual != value:
                fail(f"expected data {key}={value!r}, got {actual!r}")


def _describe(step: dict[str, Any]) -> str:
    for verb in ("send", "press", "contact", "media"):
        if verb in step:
            return f"{verb} {step[verb]!r}"
    return "?"


def _check_messages(actual: list[_Message], expected: list[Any], fail: Any) -> None:
    shown = (
        "\n".join(
            f"  {'edited' if m.edited else 'sent'}: {m.text!r} "
            f"{[b.label for b in m.buttons] or ''}"
            for m in actual
        )
        or "  nothing"
    )
    if len(actual) != len(expected):
        fail(f"expected {len(expected)} bot message(s), got {len(actual)}:\n{shown}")
    for index, (message, want) in enumerate(zip(actual, expected, strict=True), 1):
        want = {"text": want} if isinstance(want, str) else want
        problem = _message_problem(message, want)
        if problem:
            fail(f"bot message {index}: {problem}\n{shown}")


def _message_problem(message: _Message, want: dict[str, Any]) -> str | None:
    if "text" in want and str(want["text"]) not in message.text:
        return f"expected text containing {want['text']!r}, got {message.text!r}"
    if "matches" in want and not re.search(want["matches"], message.text, re.DOTALL):
        return f"expected text matching {want['matches']!r}, got {message.text!r}"
    if "edited" in want and bool(want["edited"]) != message.edited:
        return f"expected {'an edit' if want['edited'] else 'a new message'}"
    labels = [b.label for b in message.buttons]
    if "buttons" in want and [str(x) for x in want["buttons"]] != labels:
        return f"expected buttons {want['buttons']}, got {labels}"
    if "rows" in want and [[str(x) for x in row] for row in want["rows"]] != message.rows:
        return f"expected button rows {want['rows']}, got {message.rows}"
    if "has_buttons" in want:
        missing = [x for x in want["has_buttons"] if not any(str(x) in la for la in labels)]
        if missing:
            return f"expected buttons including {missing}, got {labels}"
    if "keyboard" in want:
        keys = [k.label for row in message.keyboard.rows for k in row] if message.keyboard else []
        if [str(x) for x in want["keyboard"]] != keys:
            return f"expected keyboard {want['keyboard']}, got {keys}"
    if want.get("keyboard_removed") and not message.keyboard_removed:
        return "expected the keyboard to be removed"
    return None


def _check_calls(actual: list[dict], expected: list[Any], fail: Any) -> None:
    made = [f"{c['method']} {c['path']}" for c in actual]
    if expected == [] and actual:
        fail(f"expected no backend calls, got {made}")
    position = 0
    for want in expected:
        want = {"call": want} if isinstance(want, str) else want
        method, _, path = str(want["call"]).partition(" ")
        for index in range(position, len(actual)):
            call = actual[index]
            if (
                call["method"] == method
                and re.fullmatch(path, call["path"])
                and _subset(want.get("body") or {}, call["body"])
            ):
                position = index + 1
                break
        else:
            fail(
                f"expected call {want['call']} with {want.get('body') or {}}; made: {made}"
                + "".join(f"\n  {c['method']} {c['path']} {c['body']}" for c in actual)
            )


def _subset(want: dict[str, Any], body: dict[str, Any]) -> bool:
    return all(body.get(key) == value for key, value in want.items())


def run_file(path: Path, settings: Settings | None = None) -> None:
    """Replay one transcript; raises TranscriptFailure at the first step that differs."""
    try:
        replay = Replay(path, settings or load_settings())
    except yaml.YAMLError as exc:
        raise TranscriptFailure(str(path), 0, "reading", f"not a valid transcript: {exc}") from exc
    asyncio.run(replay.run())


def transcript_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    return files
