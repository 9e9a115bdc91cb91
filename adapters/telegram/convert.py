"""Telegram updates as engine events, and the policy for traffic the bot does not serve."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import CallbackQuery, Message, Update

from engine.events import Contact, Event

MEDIA_FIELDS = (
    "photo",
    "document",
    "sticker",
    "voice",
    "video",
    "audio",
    "video_note",
    "animation",
    "location",
    "venue",
    "poll",
    "dice",
)


@dataclass(frozen=True, slots=True)
class PolicyReply:
    """Traffic outside the bot's declared scope gets this short answer (and nothing else)."""

    chat_id: int
    text: str


def convert(update: Update, private_only_text: str) -> Event | PolicyReply | None:
    """The engine event for an update; None for what the bot ignores on purpose.

    Edited messages and channel posts are ignored: an edit does not undo an answer
    already taken. In groups the bot answers commands with `private_only_text`.
    """
    if update.message is not None:
        message = update.message
        if message.chat.type != "private":
            is_command = (message.text or "").startswith("/")
            return PolicyReply(message.chat.id, private_only_text) if is_command else None
        return from_message(message)
    if update.callback_query is not None:
        return from_button(update.callback_query)
    return None


def from_message(message: Message) -> Event | None:
    base = _sender(message)
    if message.text is not None:
        text = message.text
        if text.startswith("/") and _starts_with_command(message):
            command, _, rest = text.partition(" ")
            return Event(
                kind="command", value=command.split("@")[0].lower(), text=rest.strip(), **base
            )
        return Event(kind="text", text=text, **base)
    if message.contact is not None:
        contact = message.contact
        return Event(
            kind="contact",
            contact=Contact(contact.phone_number, contact.user_id, contact.first_name),
            **base,
        )
    for field in MEDIA_FIELDS:
        value = getattr(message, field, None)
        if value:
            return Event(kind="media", value=field, media_id=_file_id(value), **base)
    return None


def from_button(query: CallbackQuery) -> Event | None:
    message = query.message
    chat_id = message.chat.id if message is not None else query.from_user.id
    if message is not None and message.chat.type != "private":
        return None
    return Event(
        chat_id=chat_id,
        kind="button",
        user_id=query.from_user.id,
        value=query.data or "",
        callback_id=query.id,
        message_id=message.message_id if message is not None else None,
        user_name=query.from_user.full_name,
        language_code=query.from_user.language_code or "",
    )


def _sender(message: Message) -> dict:
    user = message.from_user
    return {
        "chat_id": message.chat.id,
        "user_id": user.id if user else None,
        "user_name": user.full_name if user else "",
        "language_code": (user.language_code or "") if user else "",
    }


def _starts_with_command(message: Message) -> bool:
    entities = message.entities or []
    return not entities or any(e.type == "bot_command" and e.offset == 0 for e in entities)


def _file_id(value: object) -> str:
    if isinstance(value, list):
        value = value[-1] if value else None
    return str(getattr(value, "file_id", "") or "")
