"""The private control channel between the master and one worker.

A worker inherits four extra file descriptors: the shared listening socket,
a pipe it writes messages to the master on, a pipe it reads the master's
messages from, and the accept board (:mod:`crackershop.cluster.board`); and,
with rate limits on, a fifth: the memory of the rate-limit buckets the
workers share (:mod:`crackershop.ratelimit.shared`).
Messages are JSON objects, one per line, with a ``t`` field:

worker -> master: ``ready``, ``hb`` (heartbeat with stats), ``fatal`` (why
it cannot boot). (Log lines never cross it: each worker writes its own.)
master -> worker: ``drain`` (stop accepting, finish, exit), ``workers`` (how
many workers the cluster runs, ``n``: sent when a worker starts and whenever
the count changes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, Callable

from crackershop.config import Config

LISTEN_FD = 3
TO_MASTER_FD = 4
FROM_MASTER_FD = 5
BOARD_FD = 6
RATE_TABLE_FD = 7

CONFIG_ENV = "CRACKERSHOP_WORKER_CONFIG"
WORKER_ID_ENV = "CRACKERSHOP_WORKER_ID"
MASTER_PID_ENV = "CRACKERSHOP_MASTER_PID"
FAMILY_ENV = "CRACKERSHOP_LISTEN_FAMILY"
RATE_TABLE_ENV = "CRACKERSHOP_RATE_TABLE_FD"

MAX_LINE = 1024 * 1024


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode("utf-8") + b"\n"


class LineBuffer:
    """Splits a byte stream into messages; a garbled line is skipped, not fatal."""

    def __init__(self, deliver: Callable[[dict[str, Any]], None]) -> None:
        self.deliver = deliver
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > MAX_LINE:
            self.buffer = b""
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                self.deliver(message)


def config_to_env(config: Config) -> str:
    """The master's effective configuration, exactly, for its workers: they
    must share e.g. a JWT secret generated for this run."""
    return json.dumps(asdict(config))


def config_from_env(environ: Mapping[str, str] = os.environ) -> Config:
    raw = json.loads(environ[CONFIG_ENV])
    names = {f.name for f in fields(Config)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names
    }
    return Config(**values)
