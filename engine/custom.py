"""Custom actions: small Python functions a flow runs by name (`run: priority`).

A module listed under `custom_actions` in config.yaml registers its functions
with `@action("name")`. A function receives an `ActionContext` and the flow's
`with:` parameters as keyword arguments; it may be sync or async, and what it
returns is kept under the action's `save_as`. Raising `ActionError` (or any
exception) sends the flow down its `on_failure` route.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from engine.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a custom action may know of the conversation that runs it."""

    chat_id: int
    language: str
    data: Mapping[str, Any]
    status: Callable[[], Awaitable[dict[str, Any]]]


CustomAction = Callable[..., Any]
REGISTRY: dict[str, CustomAction] = {}


def action(name: str) -> Callable[[CustomAction], CustomAction]:
    """Register the decorated function as the custom action `name`."""

    def register(function: CustomAction) -> CustomAction:
        REGISTRY[name] = function
        return function

    return register


async def run_action(name: str, context: ActionContext, params: Mapping[str, Any]) -> Any:
    result = REGISTRY[name](context, **params)
    if inspect.isawaitable(result):
        result = await result
    return result


def load_action_modules(paths: list[Path]) -> None:
    """Import each module file once; its `@action` decorators fill the registry."""
    for path in paths:
        name = f"flowgram_actions_{path.stem}"
        if name in sys.modules:
            continue
        if not path.is_file():
            raise ConfigError(f"custom_actions: no file {path}; expected a Python module path")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        logger.debug("custom actions loaded from {}", path)


@action("bot_status")
async def bot_status(context: ActionContext) -> dict[str, Any]:
    """Backend health, active conversations, uptime and memory, for `/status`."""
    return await context.status()
