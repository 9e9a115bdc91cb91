"""Webhook mode: an aiohttp server that takes Telegram's POSTs and checks their secret."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from loguru import logger
from pydantic import ValidationError

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_app(
    bot: Bot, accept: Callable[[Update], Awaitable[None]], *, path: str, secret: str
) -> web.Application:
    """An app whose one route accepts updates carrying the right secret, and no others."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            logger.warning(
                "webhook request refused: wrong or missing secret header from {}", request.remote
            )
            return web.Response(status=401, text="unauthorized")
        try:
            update = Update.model_validate(await request.json(), context={"bot": bot})
        except (ValueError, ValidationError) as exc:
            logger.warning("webhook request refused: not an update ({})", type(exc).__name__)
            return web.Response(status=400, text="not an update")
        await accept(update)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(path, receive)
    return app
