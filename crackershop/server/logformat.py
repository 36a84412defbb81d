"""The log line: one flat JSON object per event, in Elastic Common Schema
(ECS) field names, so Loki, Elasticsearch or CloudWatch read it as it is;
and the readable text line of development.

Every line has ``@timestamp`` (UTC, milliseconds), ``log.level`` (debug,
info, warn, error, critical), ``message`` and ``worker``
(0: the master or a single process). A request's line adds
``http.request.method``, ``url.path``, ``http.response.status_code``,
``event.duration`` (nanoseconds), ``client.ip`` and ``request_id``; any
other line adds ``log.logger`` (the twisted.logger namespace),
``process.pid``, the event's own fields (e.g. ``delay``), and, when it
carries a failure, ``error.type``, ``error.message`` and
``error.stack_trace``.

A request's line is written by hand from its known fields (a few string
escapes and one format, about a tenth of what ``json.dumps`` of Twisted's
event costs); other events are rare and go through ``json.dumps``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Optional

from twisted.logger import LogLevel, formatEvent, formatEventAsClassicLogText

from crackershop.clock import iso_stamp

# the namespace of the one event per request (crackershop.server.requestlog)
REQUEST_NAMESPACE = "crackershop.request"

LEVEL_NAMES = {
    LogLevel.debug: "debug",
    LogLevel.info: "info",
    LogLevel.warn: "warn",
    LogLevel.error: "error",
    LogLevel.critical: "critical",
}

_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _quote(value if isinstance(value, str) else str(value))


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, (int, float)) else "null"


_REQUEST = (
    '{"@timestamp":"%s","log.level":"%s","message":%s,"http.request.method":%s,'
    '"url.path":%s,"http.response.status_code":%s,"event.duration":%s,"client.ip":%s,'
    '"request_id":%s,"worker":%d}\n'
)


# what Twisted adds to an event that is not the event's own data
_NOT_FIELDS = frozenset({"format", "message", "isError", "system", "time", "why", "failure"})


class EcsFormat:
    """Events as ECS JSON lines, for the process with this ``worker`` id."""

    def __init__(self, worker: int = 0, pid: Optional[int] = None) -> None:
        self.worker = worker
        self.pid = os.getpid() if pid is None else pid
        self.stamp = iso_stamp

    def __call__(self, event: dict[str, Any]) -> str:
        stamp = self.stamp(event.get("log_time") or time.time())
        level = LEVEL_NAMES.get(event.get("log_level"), "info")  # type: ignore[arg-type]
        if event.get("log_namespace") == REQUEST_NAMESPACE and "method" in event:
            return self._request(event, stamp, level)
        return self._other(event, stamp, level)

    def _request(self, event: dict[str, Any], stamp: str, level: str) -> str:
        method, path, status = event["method"], event.get("path"), event.get("status")
        duration = event.get("duration")
        return _REQUEST % (
            stamp,
            level,
            _text(f"{method} {path} {status}"),
            _text(method),
            _text(path),
            _number(status),
            _number(duration * 1e9) if isinstance(duration, (int, float)) else "null",
            _text(event.get("client")),
            _text(event.get("request_id")),
            self.worker,
        )

    def _other(self, event: dict[str, Any], stamp: str, level: str) -> str:
        try:
            message = formatEvent(event)
        except Exception:  # formatEvent itself reports what it cannot format
            message = str(event.get("log_format", ""))
        fields: dict[str, Any] = {
            key: value
            for key, value in event.items()
            if not key.startswith(("log_", "_")) and key not in _NOT_FIELDS
        }
        fields.update(
            {
                "@timestamp": stamp,
                "log.level": level,
                "message": message,
                "log.logger": event.get("log_namespace") or "-",
                "process.pid": self.pid,
                "worker": self.worker,
            }
        )
        failure = event.get("log_failure")
        if failure is not None:
            fields["error.type"] = getattr(failure.type, "__qualname__", str(failure.type))
            fields["error.message"] = str(failure.value)
            try:
                fields["error.stack_trace"] = failure.getTraceback()
            except Exception:
                fields["error.stack_trace"] = ""
        return json.dumps(fields, default=str, separators=(",", ":")) + "\n"


class TextFormat:
    """Development: Twisted's readable line, tagged ``worker-N`` in a cluster's worker."""

    def __init__(self, worker: int = 0) -> None:
        self.system = f"worker-{worker}" if worker else None

    def __call__(self, event: dict[str, Any]) -> str:
        if self.system is not None:
            event = {**event, "log_system": self.system}
        text = formatEventAsClassicLogText(event)
        return text if text is not None else ""
