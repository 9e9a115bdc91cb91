"""`flowgram run`: serve the main flow to Telegram users, by long polling or a webhook."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import signal
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TypeVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BotCommand
from aiohttp import web
from loguru import logger

from adapters.app import build_engine, log_backend_health
from adapters.telegram import bot_token
from adapters.telegram.channel import TelegramChannel
from adapters.telegram.feed import UpdateFeed
from adapters.telegram.polling import ALLOWED_UPDATES, poll
from adapters.telegram.webhook import webhook_app
from engine.config import Settings
from engine.errors import ConfigError
from engine.render import render_text
from engine.runtime import Engine
from engine.schema import FlowSpec
from engine.upkeep import start_upkeep

T = TypeVar("T")


class TokenRefused(ConfigError):
    """Telegram does not know the token."""


def make_bot(token: str, api_server: str | None, timeout: float) -> Bot:
    api = TelegramAPIServer.from_base(api_server) if api_server else None
    session = AiohttpSession(api=api, timeout=timeout) if api else AiohttpSession(timeout=timeout)
    return Bot(token, session=session)


def serve(settings: Settings, environ: Mapping[str, str] | None = None) -> int:
    """Run the bot until SIGINT or SIGTERM; 0 on a clean stop."""
    environ = os.environ if environ is None else environ
    token = bot_token(environ)
    return asyncio.run(
        _serve(
            settings,
            token,
            environ.get("TELEGRAM_API_SERVER") or None,
            environ.get("WEBHOOK_SECRET") or None,
        )
    )


async def _serve(
    settings: Settings, token: str, api_server: str | None, secret: str | None
) -> int:
    config = settings.telegram
    bot = make_bot(token, api_server, config.request_timeout)
    try:
        stop = _stop_on_signals()
        channel = TelegramChannel(bot, config)
        engine = build_engine(settings, channel)
        await log_backend_health(engine.backend)
        if not await _introduce(bot, engine, stop):
            return 0
        # Everything built so far (aiogram's and pydantic's many classes) lives as long as the
        # process: keep it out of the garbage collector's full passes, which otherwise pause
        # every chat for a large part of a second now and then.
        gc.freeze()
        feed = UpdateFeed(
            engine,
            channel,
            private_only_text=config.private_only_text,
            max_in_flight=config.max_in_flight,
        )
        upkeep = start_upkeep(engine, settings, stop)
        if config.mode == "webhook":
            await _serve_webhook(bot, feed, settings, secret or secrets.token_urlsafe(32), stop)
        else:
            unhook = partial(bot.delete_webhook, drop_pending_updates=False)
            if await patiently(unhook, "deleteWebhook", stop) is not None:
                logger.info("serving by long polling")
                await poll(bot, feed.accept, timeout=config.poll_timeout, stop=stop)

        logger.info("stopping: finishing updates in progress")
        await feed.drain(config.shutdown_grace)
        await upkeep
        await engine.drain()
        await engine.store.close()
        await engine.backend.close()
        logger.info("stopped cleanly")
        return 0
    finally:
        await bot.session.close()


async def _introduce(bot: Bot, engine: Engine, stop: asyncio.Event) -> bool:
    """Check the token and set the command menu in each of the flow's languages.

    Telegram out of reach is waited for (until a stop); a refused token ends the run.
    """
    try:
        me = await patiently(bot.get_me, "getMe", stop)
    except TelegramUnauthorizedError as exc:
        raise TokenRefused(
            "Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): check it with @BotFather"
        ) from exc
    if me is None:
        return False
    logger.info("connected to Telegram as @{} (id {})", me.username, me.id)
    flow = engine.flows[engine.main_flow]
    menus = [(language, {"language_code": language}) for language in flow.languages]
    menus.append((flow.languages[0], {}))  # everyone else: the first language
    for language, scope in menus:
        call = partial(bot.set_my_commands, command_menu(flow, language), **scope)
        if await patiently(call, "setMyCommands", stop) is None:
            return False
    logger.info("command menu set in {}", ", ".join(flow.languages))
    return True


async def patiently(make: Callable[[], Awaitable[T]], what: str, stop: asyncio.Event) -> T | None:
    """A call made while starting, repeated while Telegram is out of reach, failing or asking
    to wait (backing off up to 30 s); None when a stop comes first. Other refusals raise."""
    delay = 1.0
    while not stop.is_set():
        try:
            return await make()
        except TelegramRetryAfter as exc:
            wait, reason = float(exc.retry_after), exc.message
        except (TelegramNetworkError, TelegramServerError) as exc:
            wait, reason, delay = delay, exc.message, min(delay * 2, 30.0)
        logger.warning("{} failed ({}); trying again in {:.0f}s", what, reason, wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
    return None


def command_menu(flow: FlowSpec, language: str) -> list[BotCommand]:
    """The flow's global commands that have a description and are not for admins only."""
    seen: dict[str, BotCommand] = {}
    for transition in flow.global_:
        name = transition.command
        if (
            name
            and transition.description is not None
            and not transition.admin
            and name not in seen
        ):
            text = render_text(transition.description, flow, {"language": language})
            seen[name] = BotCommand(command=name[1:], description=text)
    return list(seen.values())


async def _serve_webhook(
    bot: Bot, feed: UpdateFeed, settings: Settings, secret: str, stop: asyncio.Event
) -> None:
    hook = settings.telegram.webhook
    if not hook.url:
        raise ConfigError(
            "telegram.mode is webhook but no webhook url is set "
            "(telegram.webhook.url in config.yaml, or WEBHOOK_URL)"
        )
    runner = web.AppRunner(
        webhook_app(bot, feed.accept, path=hook.path, secret=secret), access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, hook.host, hook.port)
    await site.start()
    try:
        hook_up = partial(
            bot.set_webhook, hook.url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        if await patiently(hook_up, "setWebhook", stop) is not None:
            logger.info("serving by webhook on {}:{}{}", hook.host, hook.port, hook.path)
            await stop.wait()
    finally:
        await runner.cleanup()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for name in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(name, _stopper(stop, name))
    return stop


def _stopper(stop: asyncio.Event, sig: signal.Signals):
    def on_signal() -> None:
        logger.info("{} received: no new updates will be taken", sig.name)
        stop.set()

    return on_signal
