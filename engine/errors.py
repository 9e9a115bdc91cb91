"""Every exception flowgram raises on purpose, grouped by area.

    FlowgramError
    ├── ConfigError            config.yaml or the environment is wrong
    ├── FlowError              a flow file could not be loaded; carries every Problem
    ├── ConversationError      a conversation could not go on (bad template, bad data)
    ├── RecipientGone          the user cannot be reached any more (blocked the bot)
    ├── ActionError            a custom action refused or failed
    └── BackendError           a backend endpoint failed: endpoint, status, reason
        └── BackendUnavailable the service could not be reached at all

An action that fails raises BackendError or ActionError; the engine turns either
into the flow's `on_failure` route or its error text, never into a lost conversation.
"""

from __future__ import annotations

from dataclasses import dataclass


class FlowgramError(Exception):
    """Base of every error flowgram raises on purpose."""


class ConfigError(FlowgramError):
    """config.yaml, `.env` or the environment holds a wrong value."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the flow checker, printed as `file:line:column: error: message`."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: error: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class FlowError(FlowgramError):
    """One or more flow files are invalid; `problems` holds every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ConversationError(FlowgramError):
    """A conversation could not take a step: a template or a condition failed."""


class RecipientGone(FlowgramError):
    """A channel cannot reach the user any more (Telegram: 403, the bot was blocked)."""

    def __init__(self, chat_id: int, reason: str) -> None:
        self.chat_id = chat_id
        super().__init__(f"chat {chat_id}: {reason}")


class ActionError(FlowgramError):
    """A custom action refused or failed; the message is for the log, not the user."""


class BackendError(FlowgramError):
    """A backend endpoint answered with a failure."""

    def __init__(self, endpoint: str, reason: str, status: int | None = None) -> None:
        self.endpoint = endpoint
        self.status = status
        self.reason = reason
        where = f"{endpoint} (status {status})" if status is not None else endpoint
        super().__init__(f"{where}: {reason}")


class BackendUnavailable(BackendError):
    """The service behind an endpoint could not be reached."""
