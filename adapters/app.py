"""Assembling a running bot from settings: flows, backend, store and engine.

The composition root: the one place that knows which adapter fills each port.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from loguru import logger

from adapters.demo_backend import DemoBackend
from adapters.http.transport import build_transport
from adapters.outbox import SqliteOutbox
from adapters.stores import open_store
from engine import custom
from engine.actions import Channel
from engine.backend import Backend
from engine.config import Settings
from engine.errors import ConfigError
from engine.loader import check_paths, load_flows
from engine.runtime import Engine


def load_actions(settings: Settings) -> None:
    custom.load_action_modules([settings.path(p) for p in settings.custom_actions])


def check(settings: Settings, paths: list[Path] | None = None):
    """Every problem of the flows (default: the configured folder)."""
    load_actions(settings)
    return check_paths(paths or [settings.flow_dir], settings.backend.endpoints, custom.REGISTRY)


def make_backend(settings: Settings, environ: Mapping[str, str] | None = None) -> Backend:
    """The HTTP client when the services' URLs are set; else the demo backend, with a warning."""
    environ = os.environ if environ is None else environ
    services = settings.backend.services
    missing = sorted(name for name, s in services.items() if not s.base_url)
    outbox = SqliteOutbox(settings.path(settings.backend.outbox.path))
    if not missing:
        transport = build_transport(settings.backend, environ)
        return Backend(settings.backend.endpoints, transport, outbox)
    if len(missing) < len(services):
        raise ConfigError(
            f"backend services {missing} have no base URL while others do; set "
            "API_BASE_URL and AUTH_API_BASE_URL both, or neither for the demo"
        )
    logger.warning(
        "no backend URLs configured (API_BASE_URL, AUTH_API_BASE_URL): "
        "using the embedded demo backend"
    )
    return Backend(settings.backend.endpoints, DemoBackend(), outbox)


async def log_backend_health(backend: Backend) -> None:
    """One line per service at start; an unhealthy service does not stop the bot."""
    try:
        status = await backend.status()
    except Exception as exc:
        logger.warning("backend health check failed: {}", exc)
        return
    for name, state in status["services"].items():
        logger.info("backend {} at start: {}", name, state)
    if status["queued"]:
        logger.info("outbox holds {} call(s) to deliver", status["queued"])


def build_engine(
    settings: Settings,
    channel: Channel,
    *,
    backend: Backend | None = None,
    clock: Callable[[], float] | None = None,
) -> Engine:
    """Load and check every flow (FlowError on any problem) and wire the engine."""
    load_actions(settings)
    flows = load_flows([settings.flow_dir], settings.backend.endpoints, custom.REGISTRY)
    if settings.main_flow not in flows:
        raise ConfigError(
            f"main_flow {settings.main_flow!r} is not among the flows "
            f"{sorted(flows)} in {settings.flow_dir}"
        )
    extra = {"clock": clock} if clock else {}
    return Engine(
        flows,
        main_flow=settings.main_flow,
        store=open_store(settings.storage, settings.root),
        backend=backend or make_backend(settings),
        channel=channel,
        expire_after=settings.expire_after,
        admin_ids=frozenset(settings.admin_ids),
        **extra,
    )
