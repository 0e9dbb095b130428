"""Structured logs: one JSON object per line, each naming its request and audit event.

An incident is followed from a user's complaint ("my read failed at 10:42") to the hub's
lines about it: every line logged while a request runs carries that request's id (the
client's `X-Request-Id` if it sent a sane one, else a new one, returned in the response),
lines logged while a span is active carry its trace id (`hub.telemetry.tracing`: the same
id is on the audit event and in the response's `X-Trace-Id`), and lines logged once the
operation's audit event is written carry the event's id too. The access log is one of these
lines, its path without the query string (`hub.telemetry.accesslog`). Messages hold ids,
codes and exception class names only: the hub never logs a query, a variable or a returned
value.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import accesslog

REQUEST_HEADER = "x-request-id"
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
AUDIT_EVENT_ID: ContextVar[str | None] = ContextVar("audit_event_id", default=None)
_SANE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")  # an id, not free text a client could fill


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "request_id", "trace_id", "audit_event_id"}`
    per line (the ids where known)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (value := REQUEST_ID.get()) is not None:
            line["request_id"] = value
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
        if (value := AUDIT_EVENT_ID.get()) is not None:
            line["audit_event_id"] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__  # the class: text may hold data
        return json.dumps(line, ensure_ascii=False)


def config(level: str = "info") -> dict[str, Any]:
    """A `logging.config` dictionary (also uvicorn's `log_config`): JSON lines on stderr for
    the hub's and uvicorn's loggers, the access log without query strings."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"no_query": {"()": accesslog.DropQueryStrings}},
        "handlers": {
            "default": handler,
            "access": {**handler, "filters": ["no_query"]},
        },
        "loggers": {
            "": {"handlers": ["default"], "level": level.upper()},
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


class RequestIds:
    """ASGI middleware: each HTTP request runs with its id in `REQUEST_ID` (and the audit
    event id, once known, in `AUDIT_EVENT_ID`) and answers with `X-Request-Id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(REQUEST_HEADER.encode(), b"").decode("latin-1")
        request_id = sent if _SANE.match(sent) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        event = AUDIT_EVENT_ID.set(None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            AUDIT_EVENT_ID.reset(event)
            REQUEST_ID.reset(token)
