"""Logging for every Anju process (gateway, core, actions, speech): personal data masked in each
record, one request id that follows a citizen's turn from the gateway through Rasa (as message
metadata) and the actions to the core (as the X-Request-ID header), and JSON lines when
LOG_FORMAT=json so a log collector can index them. Standard library only: both venvs use it.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
import secrets
from typing import Any, Callable, Optional

from bot.pii import mask_text

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_METADATA = "request_id"
NO_REQUEST = "-"
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("anju_request_id", default=NO_REQUEST)
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def new_request_id() -> str:
    return secrets.token_hex(8)


def accepted_request_id(value: Any) -> Optional[str]:
    """A caller's request id if it is a plain token (8-64 safe characters), else None: never log injection."""
    return value if isinstance(value, str) and _ACCEPTED.match(value) else None


def current_request_id() -> Optional[str]:
    value = REQUEST_ID.get()
    return None if value == NO_REQUEST else value


class MaskingFilter(logging.Filter):
    """Masks ID, phone and card numbers in the formatted message and stamps the request id."""

    def __init__(self, mask: Callable[[str], str] = mask_text) -> None:
        super().__init__()
        self._mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._mask(record.getMessage())
        record.args = None
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, request_id, msg[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
            "request_id": getattr(record, "request_id", NO_REQUEST), "msg": record.getMessage()}
        if record.exc_info:
            line["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str = "INFO", log_format: Optional[str] = None,
                      mask: Callable[[str], str] = mask_text) -> None:
    """Once per process, before anything logs. LOG_FORMAT=json|text (default text)."""
    log_format = (log_format or os.environ.get("LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(MaskingFilter(mask))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
