"""structlog set-up: JSON lines for machines, a console renderer on a terminal.

Log records never carry message bodies or whole phone numbers and email addresses; use `mask_identifier`."""

from __future__ import annotations

import logging
import sys

import msgspec
import structlog

from unify.settings import LogFormat, LogLevel

_json = msgspec.json.Encoder(enc_hook=str)


def _encode_json(event: object, **_: object) -> bytes:
    return _json.encode(event)


class _StderrLogger:
    """Writes each rendered line to whatever `sys.stderr` is at the time (loggers are cached on first use, and the
    stream may be replaced later, e.g. by a test harness)."""

    def msg(self, message: bytes | str) -> None:
        stream = sys.stderr
        if isinstance(message, bytes):
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                stream.flush()
                buffer.write(message + b"\n")
                buffer.flush()
                return
            message = message.decode("utf-8", "replace")
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*_: object) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(fmt: LogFormat = "auto", level: LogLevel = "info") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_encode_json)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )


def mask_identifier(value: str) -> str:
    """What a log may show of a phone number or address: enough to tell two apart, not enough to reach anyone."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"***{value[-3:]}" if len(value) > 3 else "***"
