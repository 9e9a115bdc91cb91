"""The backend port: endpoints named in config.yaml, called by flows by name.

A flow says `call: student_by_pinfl`; the endpoint's configuration says which
service, method and path that is, whether it needs a token, whether it is safe
to retry, how long its answer may be cached, where the result sits in the
answer and which statuses mean "not found". A `Transport` carries the request:
the embedded demo backend here, the resilient HTTP client in a later step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

from aiocache import SimpleMemoryCache
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from engine.errors import BackendError
from engine.schema import Duration

_PLACEHOLDER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


class EndpointConfig(BaseModel):
    """One named endpoint, as written under `backend.endpoints` in config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    method: str = Field("GET", pattern="^(GET|POST|PUT|PATCH|DELETE)$")
    path: str
    token: bool = False
    retry: bool | None = None
    cache: Duration = 0
    result: list[str] = [""]
    not_found: list[int] = [404]
    success: list[int] = [200, 201, 202, 204]

    @property
    def safe_to_retry(self) -> bool:
        return self.retry if self.retry is not None else self.method in ("GET", "PUT", "DELETE")

    @property
    def placeholders(self) -> list[str]:
        return _PLACEHOLDER.findall(self.path)


class Transport(Protocol):
    """Carries one request to a service and returns (status, decoded JSON body or None)."""

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
    ) -> tuple[int, Any]: ...

    async def health(self) -> dict[str, str]: ...

    async def close(self) -> None: ...


class BackendPort(Protocol):
    """What the engine sees of the backend."""

    def knows(self, endpoint: str) -> bool: ...

    async def call(self, endpoint: str, params: Mapping[str, Any]) -> Any: ...

    async def health(self) -> dict[str, str]: ...


class Backend:
    """The port over a transport: builds requests from endpoint configs, reads answers."""

    def __init__(self, endpoints: Mapping[str, EndpointConfig], transport: Transport) -> None:
        self.endpoints = dict(endpoints)
        self.transport = transport
        self._cache = SimpleMemoryCache()

    def knows(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    async def call(self, endpoint: str, params: Mapping[str, Any]) -> Any:
        """The endpoint's result; None when the service says "not found"; BackendError else."""
        config = self.endpoints[endpoint]
        cache_key = f"{endpoint}:{sorted(params.items())!r}" if config.cache else ""
        if cache_key:
            cached = await self._cache.get(cache_key)
            if cached is not None:
                logger.debug("backend cache hit endpoint={}", endpoint)
                return cached

        path, rest = _fill_path(endpoint, config, params)
        sends_body = config.method in ("POST", "PUT", "PATCH")
        started = time.perf_counter()
        status, body = await self.transport.request(
            config.service,
            config.method,
            path,
            query={} if sends_body else rest,
            body=rest if sends_body else None,
            token=config.token,
            retry=config.safe_to_retry,
        )
        logger.info(
            "backend call endpoint={} status={} ms={:.1f}",
            endpoint,
            status,
            (time.perf_counter() - started) * 1000,
        )

        result = _read_answer(endpoint, config, status, body)
        if cache_key and result is not None:
            await self._cache.set(cache_key, result, ttl=config.cache)
        return result

    async def health(self) -> dict[str, str]:
        return await self.transport.health()

    async def close(self) -> None:
        await self.transport.close()


def _fill_path(
    endpoint: str,
    config: EndpointConfig,
    params: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    rest = dict(params)
    missing = [name for name in config.placeholders if rest.get(name) in (None, "")]
    if missing:
        raise BackendError(endpoint, f"parameter {missing[0]!r} of path {config.path!r} is empty")
    path = _PLACEHOLDER.sub(lambda m: str(rest.pop(m.group(1))), config.path)
    return path, rest


def _read_answer(endpoint: str, config: EndpointConfig, status: int, body: Any) -> Any:
    if status in config.not_found:
        return None
    if status not in config.success:
        raise BackendError(endpoint, "unexpected status", status)
    if body is None:
        return {}
    for path in config.result:
        found = _dig(body, path)
        if found is not None:
            return found
    raise BackendError(endpoint, f"answer has none of {config.result}", status)


def _dig(body: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        if not isinstance(body, Mapping) or part not in body:
            return None
        body = body[part]
    return body
