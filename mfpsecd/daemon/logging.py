"""Application logs: structlog JSON lines, each prefixed with its journald priority (<N>).

The audit log is separate and never goes through here. Exceptions are rendered as dicts
without local variables: a frame's locals could hold a PIN, a password or a key.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import msgspec
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, WrappedLogger

_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _enc_default(obj: Any) -> Any:
    return repr(obj)


_encoder = msgspec.json.Encoder(enc_hook=_enc_default)


def _render(_logger: WrappedLogger, method: str, event: EventDict) -> str:
    priority = _PRIORITY.get(method, 6)
    body = _encoder.encode(event).decode()
    return f"<{priority}>{body}"


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            _render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
