"""A conversation: one user's place in a flow, as plain serialisable data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Frame:
    """A parent flow waiting for a sub-flow to finish."""

    flow: str
    state: str
    data: dict[str, Any]


@dataclass(slots=True)
class Conversation:
    """Where one chat stands. `state` is read and written by the flow's shared machine.

    `step` counts state entries: a timer or a button from an older step is
    recognised by it. `expires_at` is when the conversation is forgotten.
    """

    chat_id: int
    flow: str
    version: int
    state: str
    language: str
    data: dict[str, Any] = field(default_factory=dict)
    live_message_id: int | None = None
    last_activity: float = 0.0
    expires_at: float = 0.0
    step: int = 0
    page: int = 0
    previous: str | None = None
    parents: list[Frame] = field(default_factory=list)

    def dump(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def load(cls, blob: bytes | str) -> Conversation:
        raw = json.loads(blob)
        raw["parents"] = [Frame(**frame) for frame in raw.get("parents", ())]
        return cls(**raw)
