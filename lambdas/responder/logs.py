"""Structured logs for the handlers: one JSON object per line on stdout, with the Lambda context, like
Powertools' Logger (same fields, same `inject_lambda_context` / `info(..., extra=...)` API) without its import cost
(about 50 ms of every cold start; see bench/cold_start.py).

Fields: ``level``, ``location``, ``message``, ``timestamp``, ``service``, ``cold_start``, ``function_name``,
``function_memory_size``, ``function_arn``, ``function_request_id``, ``xray_trace_id`` (when tracing), then the
``extra`` keys. The level comes from ``LOG_LEVEL`` (or ``AWS_LAMBDA_LOG_LEVEL``, set by Lambda's application log
level), default INFO. The domain's standard-library loggers (``responder.*``) go through the same formatter.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from typing import Any, Callable

_FIELDS = "ir_fields"
_context: dict[str, Any] = {}
_cold = [True]


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "service": self.service,
            **_context,
        }
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            data["xray_trace_id"] = trace.split(";")[0].replace("Root=", "")
        data.update(getattr(record, _FIELDS, None) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
            data["exception_name"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(data, default=str, separators=(",", ":"))


def _level() -> str:
    level = (os.environ.get("LOG_LEVEL") or os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "INFO").upper()
    return {"WARN": "WARNING", "FATAL": "CRITICAL", "TRACE": "DEBUG"}.get(level, level)


class Logger:
    """`Logger()` in a handler module; `@logger.inject_lambda_context(log_event=False)` on the handler."""

    def __init__(self, service: str | None = None):
        self.service = service or os.environ.get("POWERTOOLS_SERVICE_NAME") or "ir-responder"
        self._log = logging.getLogger("ir")
        if not self._log.handlers:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(JsonFormatter(self.service))
            for name in ("ir", "responder"):
                target = logging.getLogger(name)
                target.addHandler(handler)
                target.propagate = False
                target.setLevel(_level())

    def inject_lambda_context(self, log_event: bool = False) -> Callable:
        def decorate(fn: Callable) -> Callable:
            @functools.wraps(fn)
            def handler(event: Any, context: Any) -> Any:
                _context.clear()
                _context.update({
                    "cold_start": _cold[0],
                    "function_name": getattr(context, "function_name", None),
                    "function_memory_size": getattr(context, "memory_limit_in_mb", None),
                    "function_arn": getattr(context, "invoked_function_arn", None),
                    "function_request_id": getattr(context, "aws_request_id", None),
                })
                _cold[0] = False
                if log_event:
                    self.info("event", extra={"event": event})
                return fn(event, context)
            return handler
        return decorate

    def _emit(self, level: int, msg: str, *args: Any, extra: dict[str, Any] | None = None, **kw: Any) -> None:
        self._log.log(level, msg, *args, extra={_FIELDS: extra or {}}, stacklevel=3, **kw)

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        self._emit(logging.DEBUG, msg, *args, **kw)

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        self._emit(logging.INFO, msg, *args, **kw)

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        self._emit(logging.WARNING, msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        self._emit(logging.ERROR, msg, *args, **kw)

    def exception(self, msg: str, *args: Any, **kw: Any) -> None:
        self._emit(logging.ERROR, msg, *args, exc_info=True, **kw)
