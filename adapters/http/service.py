"""One backend service over HTTP: pooled, capped, retried, guarded by its circuit breaker.

Each attempt of a request: wait for one of `max_in_flight` slots (bounded wait) -> the
breaker admits it or fails fast -> httpx sends it on a pooled keep-alive connection, in a
task that a cancelled caller leaves to finish (httpcore leaks pool connections when a
request is cancelled inside it) -> 401 on a protected call renews the token once ->
connection errors, timeouts, 5xx, 408 and 429 are retried with exponential backoff and
jitter (stamina, bounded; 429's Retry-After honoured) when the request is safe to repeat:
not a POST, or a POST carrying an idempotency key. Other 4xx are answers, not failures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import httpx
import stamina
import stamina.instrumentation
from loguru import logger

from adapters.http.auth import TokenKeeper
from adapters.http.breaker import CircuitBreaker, CircuitOpen
from engine.errors import BackendError, BackendUnavailable

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MALFORMED = object()

# Each retry is logged here, through loguru, at WARNING; stamina's own hook would add a bare
# "stamina.retry_scheduled" line through the standard library (not JSON in production).
stamina.instrumentation.set_on_retry_hooks([])


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _backoff_hook(exc: Exception) -> bool | float:
    if isinstance(exc, _Retryable):
        return exc.retry_after if exc.retry_after is not None else True
    return False


class ServiceClient:
    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout: float,
        attempts: int,
        retry_delay: float,
        max_connections: int = 50,
        max_in_flight: int = 10,
        queue_timeout: float = 10.0,
        breaker: CircuitBreaker | None = None,
        tokens: TokenKeeper | None = None,
    ) -> None:
        self.name = name
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self.queue_timeout = queue_timeout
        self.breaker = breaker or CircuitBreaker(name)
        self.tokens = tokens
        self._slots = asyncio.Semaphore(max_in_flight)
        self._exchanges: set[asyncio.Future[httpx.Response]] = set()
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        token: bool = False,
        retry: bool = False,
        key: str | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded body). BackendUnavailable when the service could not answer."""
        if self.breaker.rejects_now():
            raise BackendUnavailable(f"{self.name} {method} {path}", f"{self.name}: circuit open")
        return await self._with_retries(
            method, path, query, body, token, retry and (method != "POST" or key is not None), key
        )

    async def _with_retries(
        self,
        method: str,
        path: str,
        query: Any,
        body: Any,
        token: bool,
        retry: bool,
        key: str | None,
    ) -> tuple[int, Any]:
        attempts = self.attempts if retry else 1
        number = 0
        try:
            async for attempt in stamina.retry_context(
                on=_backoff_hook,
                attempts=attempts,
                timeout=None,
                wait_initial=self.retry_delay,
                wait_max=max(self.retry_delay * 8, 1.0),
                wait_jitter=self.retry_delay,
            ):
                with attempt:
                    number += 1
                    return await self._once(method, path, query, body, token, key, number)
        except _Retryable as exc:
            raise BackendUnavailable(
                f"{self.name} {method} {path}", f"{exc} after {number} attempt(s)"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        query: Any,
        body: Any,
        token: bool,
        key: str | None,
        attempt: int,
    ) -> tuple[int, Any]:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for makes a Task per request.
            async with asyncio.timeout(self.queue_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise BackendUnavailable(
                f"{self.name} {method} {path}",
                f"no free slot after {self.queue_timeout:g}s: too many requests waiting",
            ) from None
        try:
            self.breaker.admit()
        except CircuitOpen as exc:
            self._slots.release()
            raise BackendUnavailable(f"{self.name} {method} {path}", str(exc)) from exc
        started = time.perf_counter()
        # The exchange is a task of its own, which keeps the slot until it ends: a cancelled
        # caller stops waiting at once, but the request is never cancelled inside httpcore,
        # whose pool then keeps connections no request owns (encode/httpcore#1093).
        exchange = asyncio.ensure_future(
            self._send(method, path, query, body, token, key, attempt)
        )
        self._exchanges.add(exchange)
        exchange.add_done_callback(self._exchange_ended)
        try:
            response = await asyncio.shield(exchange)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            self.breaker.failure()
            self._log_failure(method, path, type(exc).__name__, started, attempt)
            raise _Retryable(f"{type(exc).__name__}") from exc
        except BaseException:
            self.breaker.release()
            raise
        return self._judge(method, path, response, started, attempt)

    async def _send(
        self,
        method: str,
        path: str,
        query: Any,
        body: Any,
        token: bool,
        key: str | None,
        attempt: int,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        bearer = await self.tokens.token() if token and self.tokens else None
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        send = partial(self.http.request, method, path, params=query or None, json=body)
        started = time.perf_counter()
        response = await send(headers=headers)
        if response.status_code == 401 and bearer and self.tokens:
            _log_request(self.name, method, path, 401, started, attempt)
            headers["Authorization"] = f"Bearer {await self.tokens.renew(bearer)}"
            response = await send(headers=headers)
        return response

    def _judge(
        self, method: str, path: str, response: httpx.Response, started: float, attempt: int
    ) -> tuple[int, Any]:
        status = response.status_code
        _log_request(self.name, method, path, status, started, attempt)
        if status in RETRYABLE_STATUSES:
            self.breaker.failure()
            self._log_failure(method, path, f"status {status}", started, attempt)
            raise _Retryable(f"status {status}", _retry_after(response))
        body = _decode(response)
        if body is MALFORMED and 200 <= status < 300:
            self.breaker.failure()
            logger.warning(
                "{} {} {} answered {} with a body that is not JSON",
                self.name,
                method,
                path,
                status,
            )
            raise BackendError(f"{self.name} {method} {path}", "answer is not JSON", status)
        self.breaker.success()
        return status, None if body is MALFORMED else body

    def _log_failure(
        self, method: str, path: str, reason: str, started: float, attempt: int
    ) -> None:
        logger.warning(
            "{} {} {} failed ({}) after {:.0f} ms, attempt {}",
            self.name,
            method,
            path,
            reason,
            (time.perf_counter() - started) * 1000,
            attempt,
        )

    def _exchange_ended(self, exchange: asyncio.Future[httpx.Response]) -> None:
        self._exchanges.discard(exchange)
        self._slots.release()
        if not exchange.cancelled():
            exchange.exception()  # seen: its caller may have stopped waiting for it

    async def close(self) -> None:
        for exchange in list(self._exchanges):
            exchange.cancel()
        await asyncio.gather(*self._exchanges, return_exceptions=True)
        await self.http.aclose()


def _log_request(
    service: str, method: str, path: str, status: int, started: float, attempt: int
) -> None:
    """The one DEBUG line of every request that was answered."""
    elapsed = (time.perf_counter() - started) * 1000
    logger.debug(
        "{} {} {} status={} ms={:.0f} attempt={}", service, method, path, status, elapsed, attempt
    )


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return MALFORMED


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None
