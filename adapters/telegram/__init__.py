"""The Telegram adapter: aiogram 3's Bot API client in, engine events; engine actions out.

convert   an aiogram Update -> an engine Event (or a policy reply, or nothing)
channel   engine actions -> Bot API calls, within Telegram's limits, surviving its refusals
feed      accepted updates -> the engine: once each, in order per chat, bounded in flight
polling   getUpdates, long polling, never dying on a network error
webhook   an aiohttp server that takes Telegram's POSTs, checking the secret header
serve     `flowgram run`: everything above, started and stopped gracefully
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from engine.errors import ConfigError


def bot_token(environ: Mapping[str, str] | None = None) -> str:
    """TELEGRAM_BOT_TOKEN, or a ConfigError that says how to get one.

    Light on purpose (no aiogram): `flowgram run` checks it before the slow imports.
    """
    token = (os.environ if environ is None else environ).get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put "
            "its token in the environment or in .env"
        )
    return token
