"""Logging through loguru, set up once from LOG_LEVEL and BOT_ENV.

Every line passes through `mask`: numbers that look like phones or PINFLs
keep only their last two digits, whatever code wrote the line. Names are
never written by the engine (it logs data keys, not values).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from loguru import logger

# Nine or more digits, single spaces, dashes or brackets between them (+998 (90) 123-45-67,
# 12345678901234); not a date (2026-12-03 18:20), a time, a decimal, or digits inside a word.
_LONG_NUMBER = re.compile(r"(?<![\w.:-])(?!\d{4}-\d\d-\d\d)\+?\d(?:[ ()\-]{0,2}\d){8,}(?![\w:.])")
_SECRET = re.compile(r"(?i)(bearer\s+|token[\"'=:\s]+|password[\"'=:\s]+)[^\s\"',}]+")
_BOT_TOKEN = re.compile(r"\d{5,}:[\w-]{20,}")

DEBUG_LEVEL = 10

FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | "
    "{name}:{function} | {message}{extra[fields]}"
)


def mask(text: str) -> str:
    """'+998901234567' -> '+99*********67'; 14-digit PINFLs likewise; secrets dropped."""
    text = _BOT_TOKEN.sub("<bot token>", _SECRET.sub(lambda m: m.group(1) + "***", text))
    return _LONG_NUMBER.sub(_mask_number, text)


def _mask_number(match: re.Match[str]) -> str:
    digits = match.group(0)
    return digits[:3] + "*" * max(len(digits) - 5, 1) + digits[-2:]


def _patch(record: Any) -> None:
    record["message"] = mask(record["message"])
    extra = record["extra"]
    shown = {k: v for k, v in extra.items() if k != "fields"}
    for key, value in shown.items():
        if isinstance(value, str):
            extra[key] = mask(value)
    extra["fields"] = "".join(f" {k}={extra[k]}" for k in shown)


def setup_logging(level: str = "INFO", env: str = "development") -> None:
    """One sink on stderr: readable lines in development, JSON lines in production."""
    logger.remove()
    logger.configure(patcher=_patch, extra={"fields": ""})
    if env == "production":
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(sys.stderr, level=level, format=FORMAT, backtrace=False, diagnose=False)


def debug_enabled() -> bool:
    """Does any sink take DEBUG lines? Saves binding fields for lines nobody reads."""
    # loguru keeps the lowest level of all its sinks here (private, stable since 0.4)
    return logger._core.min_level <= DEBUG_LEVEL
