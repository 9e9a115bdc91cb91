"""The engine's backend `Transport` over the real services, with health checks at start."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
from loguru import logger

from adapters.http.auth import TokenKeeper
from adapters.http.breaker import CircuitBreaker
from adapters.http.service import ServiceClient, _decode, _log_request
from engine.config import BackendConfig
from engine.errors import BackendError, BackendUnavailable

HEALTH_PATHS = ("/health", "/", "/users?limit=1")


class HttpTransport:
    def __init__(self, services: Mapping[str, ServiceClient]) -> None:
        self.services = dict(services)

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any],
        body: Mapping[str, Any] | None,
        token: bool,
        retry: bool,
        key: str | None = None,
    ) -> tuple[int, Any]:
        client = self.services.get(service)
        if client is None:
            raise BackendError(f"{service} {method} {path}", "no such service configured")
        return await client.request(
            method, path, query=query, body=body, token=token, retry=retry, key=key
        )

    async def health(self) -> dict[str, str]:
        return {
            name: f"{await probe(client)}, circuit {client.breaker.state.value}"
            for name, client in self.services.items()
        }

    async def close(self) -> None:
        for client in self.services.values():
            await client.close()


async def probe(client: ServiceClient) -> str:
    """'up' when /health answers; else / ; else /users?limit=1 (deployments differ)."""
    for path in HEALTH_PATHS:
        try:
            response = await client.http.get(path, timeout=5)
        except httpx.HTTPError as exc:
            return f"down ({type(exc).__name__})"
        if response.status_code < 400:
            return "up"
        if response.status_code >= 500:
            return f"down (status {response.status_code})"
    return "up (no health path answered)"


def build_transport(config: BackendConfig, environ: Mapping[str, str]) -> HttpTransport:
    """Clients for the configured services; the registry's tokens serve every `token:` call."""
    clients: dict[str, ServiceClient] = {}
    tokens: TokenKeeper | None = None
    for name, service in config.services.items():
        breaker = CircuitBreaker(
            name, threshold=config.circuit_threshold, cooldown=config.circuit_cooldown
        )
        clients[name] = ServiceClient(
            name,
            service.base_url or "",
            timeout=config.timeout,
            attempts=config.retry_attempts,
            retry_delay=config.retry_delay,
            max_connections=config.max_connections,
            max_in_flight=config.max_in_flight,
            queue_timeout=config.queue_timeout,
            breaker=breaker,
        )
    auth = config.auth
    if auth.service in clients:
        tokens = TokenKeeper(
            _poster(clients[auth.service]),
            username=environ.get(auth.username_env, ""),
            password=environ.get(auth.password_env, ""),
            login_path=auth.login_path,
            refresh_path=auth.refresh_path,
            token_file=auth.token_file,
        )
        for client in clients.values():
            client.tokens = tokens
    return HttpTransport(clients)


def _poster(client: ServiceClient):
    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        started = time.perf_counter()
        try:
            response = await client.http.post(path, json=body)
        except httpx.HTTPError as exc:
            logger.warning("{} POST {} failed ({})", client.name, path, type(exc).__name__)
            raise BackendUnavailable(f"{client.name} POST {path}", type(exc).__name__) from exc
        _log_request(client.name, "POST", path, response.status_code, started, 1)
        return response.status_code, _decode(response)

    return post


async def log_health(transport: HttpTransport) -> None:
    for name, state in (await transport.health()).items():
        logger.info("backend {} at start: {}", name, state)
