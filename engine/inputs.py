"""What a user sent, checked against a state's `expect`: normalised, validated, kept.

A refusal carries a reason (`too_short`, `pattern`, `wrong_kind`, ...), so a
flow can give a precise error text for each and a general one for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.events import Event
from engine.schema import ExpectSpec

MEDIA_KINDS = frozenset(
    {
        "photo",
        "document",
        "voice",
        "video",
        "sticker",
        "location",
        "audio",
        "video_note",
        "animation",
    }
)

_NORMALIZERS = {
    "trim": str.strip,
    "drop_spaces": lambda s: re.sub(r"\s+", "", s),
    "drop_dashes": lambda s: s.replace("-", "").replace("‐", "").replace("–", ""),
    "drop_brackets": lambda s: re.sub(r"[()\[\]]", "", s),
    "lower": str.lower,
    "upper": str.upper,
    # Telegram sends a shared contact's number with or without the leading '+'.
    "phone": lambda s: "+" + s.lstrip("+") if s.lstrip("+").isdigit() else s,
}


# Digits with an optional sign and decimal part: not "nan", "inf" or "1_0", which float() takes.
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


@dataclass(frozen=True, slots=True)
class Verdict:
    value: Any = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def accepts(expect: ExpectSpec, event: Event) -> bool:
    """Is this event a kind of answer the state waits for at all?"""
    kinds = expect.kinds
    if "any" in kinds:
        return event.kind in ("text", "contact", "media")
    if event.kind == "text":
        return "text" in kinds or "number" in kinds
    if event.kind == "contact":
        return "contact" in kinds
    if event.kind == "media":
        return event.value in kinds or ("media" in kinds and event.value in MEDIA_KINDS)
    return False


def judge(expect: ExpectSpec, event: Event) -> Verdict:
    """Normalise and validate an answer; the value to keep, or the reason it is refused."""
    if not accepts(expect, event):
        return Verdict(reason="wrong_kind")
    if event.kind == "media":
        return Verdict({"kind": event.value, "file_id": event.media_id})
    if event.kind == "contact":
        contact = event.contact
        if contact is None or contact.user_id != event.sender:
            return Verdict(reason="foreign_contact")
        text = contact.phone
    else:
        text = event.text
    for name in expect.normalize:
        text = _NORMALIZERS[name](text)
    return _validate(expect, text)


def _validate(expect: ExpectSpec, text: str) -> Verdict:
    if expect.min_length is not None and len(text) < expect.min_length:
        return Verdict(reason="too_short")
    if expect.max_length is not None and len(text) > expect.max_length:
        return Verdict(reason="too_long")
    if expect.pattern is not None and not _compiled(expect.pattern).fullmatch(text):
        return Verdict(reason="pattern")
    if "number" in expect.kinds and "text" not in expect.kinds:
        if not _NUMBER.fullmatch(text):
            return Verdict(reason="not_a_number")
        number = float(text.replace(",", "."))
        if expect.min is not None and number < expect.min:
            return Verdict(reason="too_small")
        if expect.max is not None and number > expect.max:
            return Verdict(reason="too_large")
        return Verdict(int(number) if number.is_integer() else number)
    return Verdict(text)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
