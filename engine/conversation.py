"""A conversation: one user's place in a flow, as plain serialisable data."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import orjson


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
        # Not dataclasses.asdict: it deep-copies `data` only for json to walk it again.
        fields = {name: getattr(self, name) for name in _FIELDS}
        fields["parents"] = [
            {"flow": f.flow, "state": f.state, "data": f.data} for f in self.parents
        ]
        return orjson.dumps(fields)

    @classmethod
    def load(cls, blob: bytes | str) -> Conversation:
        raw = orjson.loads(blob)
        raw["parents"] = [Frame(**frame) for frame in raw.get("parents", ())]
        return cls(**raw)


_FIELDS = tuple(f.name for f in fields(Conversation))
