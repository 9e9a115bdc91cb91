"""Settings: config.yaml, overridden by the environment and a `.env` file.

Every environment variable of `shared/product/backend-api.md` is honoured;
when a setting is wrong the message names the key, the value and what was
expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from dotenv import load_dotenv
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.backend import EndpointConfig
from engine.errors import ConfigError
from engine.schema import Duration

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    base_url_env: str | None = None


class AuthConfig(BaseModel):
    """The registry's service account; the credentials themselves come from the environment."""

    model_config = ConfigDict(extra="forbid")

    service: str = "registry"
    login_path: str = "/auth/login"
    refresh_path: str = "/auth/refresh"
    username_env: str = "API_USERNAME"
    password_env: str = "API_PASSWORD"
    token_file: Path | None = None


class OutboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = "var/outbox.sqlite3"
    retry_every: Duration = 15


class BackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout: Duration = 15
    retry_attempts: int = Field(3, ge=0)
    retry_delay: Duration = 1
    max_connections: int = Field(50, ge=1)
    max_in_flight: int = Field(10, ge=1)
    queue_timeout: Duration = 10
    circuit_threshold: int = Field(5, ge=1)
    circuit_cooldown: Duration = 30
    auth: AuthConfig = AuthConfig()
    outbox: OutboxConfig = OutboxConfig()
    services: dict[str, ServiceConfig] = {}
    endpoints: dict[str, EndpointConfig] = {}


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    path: str = "/telegram/webhook"


class TelegramConfig(BaseModel):
    """How the bot meets Telegram; the token itself only ever comes from the environment."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["polling", "webhook"] = "polling"
    poll_timeout: Duration = 25
    request_timeout: Duration = 15
    webhook: WebhookConfig = WebhookConfig()
    chats: Literal["private"] = "private"
    private_only_text: str = "This bot works in private chats only."
    max_in_flight: int = Field(1000, ge=1)
    shutdown_grace: Duration = 10
    per_chat_burst: int = Field(5, ge=1)
    per_chat_per_second: float = Field(1.0, gt=0)
    global_per_second: float = Field(30.0, gt=0)
    answer_buttons_within: Duration = 1


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flows: str = "flows"
    main_flow: str = "feedback"
    custom_actions: list[str] = []
    expire_after: Duration = 1800
    sweep_every: Duration = 600
    stats_every: Duration = 600
    storage: str = "memory://"
    admin_ids: list[int] = []
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    bot_env: Literal["development", "production"] = "development"
    backend: BackendConfig = BackendConfig()
    telegram: TelegramConfig = TelegramConfig()
    root: Path = Path(".")

    def path(self, relative: str) -> Path:
        """A path from config.yaml, taken relative to the file's folder."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.root / candidate

    @property
    def flow_dir(self) -> Path:
        return self.path(self.flows)


_ENV_KEYS = {"STORAGE_URL": "storage", "LOG_LEVEL": "log_level", "BOT_ENV": "bot_env"}


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read config.yaml (the working folder's, else the packaged one) and the environment."""
    if environ is None:
        load_dotenv(Path.cwd() / ".env", override=False)
        environ = dict(os.environ)
    path = path or (Path("config.yaml") if Path("config.yaml").is_file() else DEFAULT_CONFIG)
    try:
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc

    for variable, key in _ENV_KEYS.items():
        if environ.get(variable):
            raw[key] = environ[variable].upper() if key == "log_level" else environ[variable]
    if environ.get("ADMIN_IDS"):
        raw["admin_ids"] = [part.strip() for part in environ["ADMIN_IDS"].split(",") if part]
    _apply_backend_env(raw.setdefault("backend", {}), environ)
    _apply_telegram_env(raw.setdefault("telegram", {}), environ)

    try:
        settings = Settings(**raw, root=path.resolve().parent)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"{path}: {where}: {error['msg']} (got {error.get('input')!r})") from exc
    return settings


def _apply_backend_env(backend: dict[str, Any], environ: dict[str, str]) -> None:
    if environ.get("API_TIMEOUT"):
        backend["timeout"] = float(environ["API_TIMEOUT"]) / 1000
    if environ.get("API_RETRY_ATTEMPTS"):
        backend["retry_attempts"] = int(environ["API_RETRY_ATTEMPTS"])
    if environ.get("API_RETRY_DELAY"):
        backend["retry_delay"] = float(environ["API_RETRY_DELAY"]) / 1000
    for service in (backend.get("services") or {}).values():
        variable = service.get("base_url_env")
        if variable and environ.get(variable):
            service["base_url"] = environ[variable]


def _apply_telegram_env(telegram: dict[str, Any], environ: dict[str, str]) -> None:
    if environ.get("TELEGRAM_MODE"):
        telegram["mode"] = environ["TELEGRAM_MODE"]
    webhook = telegram.setdefault("webhook", {})
    for variable, key in (
        ("WEBHOOK_URL", "url"),
        ("WEBHOOK_HOST", "host"),
        ("WEBHOOK_PORT", "port"),
        ("WEBHOOK_PATH", "path"),
    ):
        if environ.get(variable):
            webhook[key] = environ[variable]
