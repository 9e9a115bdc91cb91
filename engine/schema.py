"""The typed schema of a flow file: what each key means and which values it takes.

Flow files are written by product staff. Every model forbids unknown keys so
that a typo is reported (with a "did you mean") instead of silently ignored.
Semantic checks that need the whole flow (targets, reachability, texts) live
in `engine.checker`.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"2s"`, `"30m"`, `"1h"`; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2s, 30m or 1h")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 2s, 30m or 1h, got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration)]

# A text is `{lang: template}`, a reference `"@name"` to the flow's `texts`, or a
# language-neutral template such as "{{ category.prompt }}".
Text = dict[str, str] | str

InputKind = Literal[
    "text",
    "number",
    "contact",
    "photo",
    "document",
    "voice",
    "video",
    "sticker",
    "location",
    "media",
    "any",
]
Normalizer = Literal[
    "trim", "drop_spaces", "drop_dashes", "drop_brackets", "lower", "upper", "phone"
]
Reason = Literal[
    "pattern",
    "too_short",
    "too_long",
    "too_small",
    "too_large",
    "not_a_number",
    "wrong_kind",
    "foreign_contact",
]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ButtonSpec(Spec):
    """An inline button: pressing it sends `value` back to the flow."""

    label: Text
    value: str


class KeyButtonSpec(Spec):
    """A reply-keyboard button; with `contact: true` it shares the user's own contact."""

    label: Text
    value: str | None = None
    contact: bool = False


class KeyboardSpec(Spec):
    """A reply keyboard under the input field; `persistent` keeps it shown."""

    buttons: list[list[KeyButtonSpec]]
    persistent: bool = False


class DataButtonsSpec(Spec):
    """Inline buttons made from a list in the conversation's data."""

    items: str
    label: str
    value: str | None = None
    save_as: str
    columns: int = Field(1, ge=1, le=8)
    page_size: int | None = Field(None, ge=1, le=90)


class ExpectSpec(Spec):
    """What a state waits for, how it is cleaned, checked and where it is kept."""

    input: InputKind | list[InputKind] = "text"
    normalize: list[Normalizer] = []
    pattern: str | None = None
    min_length: int | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=1)
    min: float | None = None
    max: float | None = None
    save_as: str
    error: Text | None = None
    errors: dict[Reason, Text] = {}

    @cached_property  # models are frozen: computed once, read on every event
    def kinds(self) -> tuple[str, ...]:
        return (self.input,) if isinstance(self.input, str) else tuple(self.input)


class ActionSpec(Spec):
    """One step of work; exactly one of `set`, `unset`, `call`, `run`."""

    set: dict[str, Any] | None = None
    unset: list[str] | None = None
    call: str | None = None
    run: str | None = None
    with_: dict[str, Any] = Field({}, alias="with")
    save_as: str | None = None
    on_failure: str | None = None
    wait: bool = True

    @model_validator(mode="after")
    def _one_verb(self) -> ActionSpec:
        verbs = [v for v in ("set", "unset", "call", "run") if getattr(self, v) is not None]
        if len(verbs) != 1:
            raise ValueError(
                "an action needs exactly one of set, unset, call, run; "
                f"found {', '.join(verbs) or 'none'}"
            )
        if verbs[0] in ("set", "unset") and (self.with_ or self.save_as or self.on_failure):
            raise ValueError(f"'{verbs[0]}' takes no with, save_as or on_failure")
        return self

    @cached_property
    def verb(self) -> str:
        return next(v for v in ("set", "unset", "call", "run") if getattr(self, v) is not None)


class TransitionSpec(Spec):
    """A way from one state to another, on an event, if `when` holds.

    With none of `button`, `command`, `text`, `after` it is automatic: it is
    taken once the state has nothing more to wait for.
    """

    button: str | None = None
    command: str | None = None
    text: str | None = None
    after: Duration | None = None
    when: str | None = None
    do: list[ActionSpec] = []
    say: Text | None = None
    go: str | None = None
    admin: bool = False
    description: Text | None = None

    @model_validator(mode="after")
    def _one_event(self) -> TransitionSpec:
        events = [
            e for e in ("button", "command", "text", "after") if getattr(self, e) is not None
        ]
        if len(events) > 1:
            raise ValueError(f"a transition listens to one event, found {', '.join(events)}")
        return self

    @field_validator("command")
    @classmethod
    def _command_name(cls, command: str | None) -> str | None:
        if command is not None and not re.fullmatch(r"/[a-z0-9_]{1,32}", command):
            raise ValueError(
                f"expected '/' and 1 to 32 of a-z, 0-9 and _ (such as /menu), got {command!r}"
            )
        return command

    @cached_property
    def event(self) -> str:
        for name, kind in (
            ("button", "button"),
            ("command", "command"),
            ("text", "text"),
            ("after", "timer"),
        ):
            if getattr(self, name) is not None:
                return kind
        return "auto"


class StateSpec(Spec):
    """A point of the conversation: it says something, waits, and moves on."""

    say: Text | None = None
    edit: bool = False
    buttons: list[ButtonSpec] = []
    columns: int = Field(1, ge=1, le=8)
    buttons_from: DataButtonsSpec | None = None
    keyboard: KeyboardSpec | Literal["remove"] | None = None
    expect: ExpectSpec | None = None
    do: list[ActionSpec] = []
    flow: str | None = None
    with_: dict[str, Any] = Field({}, alias="with")
    save_as: str | None = None
    on: list[TransitionSpec] = []
    fallback: Text | None = None
    stale_buttons: Literal["refuse", "accept"] | None = None
    final: bool = False
    result: dict[str, Any] | None = None

    @cached_property
    def waits(self) -> bool:
        """True when the state stops for the user (or a timer) before moving on."""
        return bool(
            self.expect
            or self.buttons
            or self.buttons_from
            or self.flow
            or any(t.event != "auto" for t in self.on)
        )


class FlowSpec(Spec):
    """A whole flow file."""

    flow: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = 1
    languages: list[str] = Field(min_length=1)
    start: str
    expire_after: Duration | None = None
    stale_buttons: Literal["refuse", "accept"] = "refuse"
    texts: dict[str, Text] = {}
    lists: dict[str, list[Any] | dict[str, Any]] = {}
    global_: list[TransitionSpec] = Field([], alias="global")
    fallback: Text | None = None
    error: Text | None = None
    states: dict[str, StateSpec] = Field(min_length=1)
