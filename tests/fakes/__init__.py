"""Fakes of the outside world for end-to-end tests."""

from tests.fakes.telegram import (
    ApiError,
    Call,
    CallbackAnswer,
    ChatAction,
    Failure,
    FakeTelegram,
    FakeUser,
    LoopbackSession,
    StoredMessage,
    Webhook,
    WebhookDelivery,
)

__all__ = [
    "ApiError",
    "Call",
    "CallbackAnswer",
    "ChatAction",
    "Failure",
    "FakeTelegram",
    "FakeUser",
    "LoopbackSession",
    "StoredMessage",
    "Webhook",
    "WebhookDelivery",
]
