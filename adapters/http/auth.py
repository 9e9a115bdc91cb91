"""The student registry's tokens: log in, refresh on 401, once for everyone waiting.

A hundred requests that meet 401 together cause one refresh: each caller says
which token failed, and only the first caller whose token is still the current
one refreshes; the others wait on the same lock and then find a newer token.
A refused refresh token means logging in again; a refused login fails the
calls with a clear error and the bot keeps running. Tokens live in memory,
and optionally in a file only the owner may read.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loguru import logger

from engine.errors import BackendError

# (method, path, json body) -> (status, decoded body); carried by the registry's client.
Post = Callable[[str, dict[str, Any]], Awaitable[tuple[int, Any]]]


class LoginFailed(BackendError):
    """The registry refused the service account, or could not be asked."""


class TokenKeeper:
    def __init__(
        self,
        post: Post,
        *,
        username: str,
        password: str,
        login_path: str = "/auth/login",
        refresh_path: str = "/auth/refresh",
        token_file: Path | None = None,
    ) -> None:
        self._post = post
        self._credentials = {"username": username, "password": password}
        self._login_path, self._refresh_path = login_path, refresh_path
        self._file = token_file
        self._lock = asyncio.Lock()
        self.access: str | None = None
        self.refresh: str | None = None
        self.logins = 0
        self.refreshes = 0
        self._load()

    async def token(self) -> str:
        """The current access token, logging in first if there is none."""
        if self.access is None:
            async with self._lock:
                if self.access is None:
                    await self._login()
        assert self.access is not None
        return self.access

    async def renew(self, failed: str | None) -> str:
        """A request with `failed` met 401: refresh (once for all), return the new token."""
        async with self._lock:
            if self.access is not None and self.access != failed:
                return self.access  # someone refreshed while we waited
            if self.refresh and await self._refresh():
                return self.access  # type: ignore[return-value]
            await self._login()
            return self.access  # type: ignore[return-value]

    async def _refresh(self) -> bool:
        status, body = await self._post(self._refresh_path, {"refresh": self.refresh})
        if status == 200 and isinstance(body, dict) and body.get("access"):
            self.refreshes += 1
            self.access = body["access"]
            self.refresh = body.get("refresh") or self.refresh
            logger.info("refreshed the registry's access token")
            self._save()
            return True
        logger.info("the registry refused to refresh (status {}); logging in again", status)
        return False

    async def _login(self) -> None:
        if not self._credentials["username"] or not self._credentials["password"]:
            raise LoginFailed("auth/login", "API_USERNAME and API_PASSWORD are not set")
        status, body = await self._post(self._login_path, self._credentials)
        if status != 200 or not isinstance(body, dict) or not body.get("access"):
            self.access = self.refresh = None
            raise LoginFailed("auth/login", "the registry refused the service account", status)
        self.logins += 1
        self.access, self.refresh = body["access"], body.get("refresh")
        logger.info("logged in to the registry")
        self._save()

    def _load(self) -> None:
        if self._file is None or not self._file.is_file():
            return
        try:
            saved = json.loads(self._file.read_text(encoding="utf-8"))
            self.access, self.refresh = saved.get("access"), saved.get("refresh")
        except (OSError, ValueError):
            logger.warning("the saved tokens in {} are unreadable; logging in afresh", self._file)

    def _save(self) -> None:
        if self._file is None:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"access": self.access, "refresh": self.refresh}, handle)
