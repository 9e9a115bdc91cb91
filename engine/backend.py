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

from engine.errors import BackendError, BackendUnavailable
from engine.outbox import Outbox
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
    fallback_path: str | None = None
    idempotency_key: str | None = None
    outbox: bool = False

    @property
    def safe_to_retry(self) -> bool:
        if self.retry is not None:
            return self.retry
        return self.method in ("GET", "PUT", "DELETE") or self.idempotency_key is not None


class Transport(Protocol):
    """Carries one request to a service and returns (status, decoded JSON body or None).

    It raises BackendUnavailable when the service could not be reached (after its
    own retries) and BackendError for an answer it cannot read.
    """

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
    ) -> tuple[int, Any]: ...

    async def health(self) -> dict[str, str]: ...

    async def close(self) -> None: ...


class BackendPort(Protocol):
    """What the engine sees of the backend."""

    def knows(self, endpoint: str) -> bool: ...

    async def call(self, endpoint: str, params: Mapping[str, Any]) -> Any: ...

    async def status(self) -> dict[str, Any]: ...

    async def deliver_queued(self) -> int: ...

    async def close(self) -> None: ...


QUEUED = {"queued": True}
"""What a call to an `outbox: true` endpoint returns when it was kept for later."""


class Backend:
    """The port over a transport: builds requests from endpoint configs, reads answers.

    Cached endpoints keep their last good answer and serve it when the service
    fails; endpoints marked `outbox` keep a call the service cannot take now and
    deliver it later (`deliver_queued`), once, under the same idempotency key.
    """

    def __init__(
        self,
        endpoints: Mapping[str, EndpointConfig],
        transport: Transport,
        outbox: Outbox | None = None,
    ) -> None:
        self.endpoints = dict(endpoints)
        self.transport = transport
        self.outbox = outbox
        self._cache = SimpleMemoryCache()
        self._last_good: dict[str, Any] = {}

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
        try:
            result = await self._call(endpoint, config, params)
        except BackendUnavailable:
            if config.outbox and self.outbox is not None:
                return await self._keep(endpoint, config, params)
            if cache_key in self._last_good:
                logger.warning("backend {} failed; serving its last good answer", endpoint)
                return self._last_good[cache_key]
            raise
        if cache_key and result is not None:
            await self._cache.set(cache_key, result, ttl=config.cache)
            self._last_good[cache_key] = result
        return result

    async def _call(self, endpoint: str, config: EndpointConfig, params: Mapping[str, Any]) -> Any:
        status, body = await self._request(endpoint, config, config.path, params)
        if config.fallback_path and status in (404, 405) and not isinstance(body, dict):
            logger.debug(
                "backend {}: no path form here; trying {}", endpoint, config.fallback_path
            )
            status, body = await self._request(endpoint, config, config.fallback_path, params)
        return _read_answer(endpoint, config, status, body)

    async def _request(
        self, endpoint: str, config: EndpointConfig, path_template: str, params: Mapping[str, Any]
    ) -> tuple[int, Any]:
        path, rest = _fill_path(endpoint, path_template, params)
        sends_body = config.method in ("POST", "PUT", "PATCH")
        key = str(params.get(config.idempotency_key) or "") if config.idempotency_key else None
        started = time.perf_counter()
        status, body = await self.transport.request(
            config.service,
            config.method,
            path,
            query={} if sends_body else rest,
            body=rest if sends_body else None,
            token=config.token,
            retry=config.safe_to_retry,
            key=key or None,
        )
        logger.info(
            "backend call endpoint={} status={} ms={:.1f}",
            endpoint,
            status,
            (time.perf_counter() - started) * 1000,
        )
        return status, body

    async def _keep(
        self, endpoint: str, config: EndpointConfig, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        key = str(params.get(config.idempotency_key or "", "") or "")
        assert self.outbox is not None
        await self.outbox.put(endpoint, dict(params), key)
        logger.warning(
            "backend {} unavailable; the call is kept in the outbox and will be "
            "delivered when the service is back",
            endpoint,
        )
        return dict(QUEUED)

    async def deliver_queued(self) -> int:
        """Deliver kept calls, oldest first, until the service fails again; how many went."""
        if self.outbox is None:
            return 0
        delivered = 0
        for parcel in await self.outbox.pending():
            config = self.endpoints.get(parcel.endpoint)
            if config is None:
                await self.outbox.refused(parcel, "endpoint no longer configured")
                continue
            try:
                await self._call(parcel.endpoint, config, parcel.params)
            except BackendUnavailable:
                await self.outbox.attempted(parcel)
                break
            except BackendError as exc:
                logger.error("outbox: {} refused for good ({}); set aside", parcel.endpoint, exc)
                await self.outbox.refused(parcel, str(exc))
                continue
            await self.outbox.delivered(parcel)
            delivered += 1
        if delivered:
            logger.info("outbox: delivered {} kept call(s)", delivered)
        return delivered

    async def status(self) -> dict[str, Any]:
        depth = await self.outbox.depth() if self.outbox is not None else 0
        return {"services": await self.transport.health(), "queued": depth}

    async def close(self) -> None:
        await self.transport.close()
        if self.outbox is not None:
            await self.outbox.close()


def _fill_path(
    endpoint: str,
    template: str,
    params: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    rest = dict(params)
    names = _PLACEHOLDER.findall(template)
    missing = [name for name in names if rest.get(name) in (None, "")]
    if missing:
        raise BackendError(endpoint, f"parameter {missing[0]!r} of path {template!r} is empty")
    path = _PLACEHOLDER.sub(lambda m: str(rest.pop(m.group(1))), template)
    return path, rest


def _read_answer(endpoint: str, config: EndpointConfig, status: int, body: Any) -> Any:
    if status in config.not_found:
        return None
    if status >= 500:
        raise BackendUnavailable(endpoint, "service error", status)
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
