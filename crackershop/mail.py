"""Outgoing mail. Without a mail relay configured, messages are written to
an outbox directory (one JSON file each) for an operator or a test to read."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Optional

from twisted.logger import Logger
from zope.interface import Interface, implementer

log = Logger()


class IMailer(Interface):
    def send(to: str, subject: str, text: str) -> None:
        """Send (or queue) one message; never raises."""


@implementer(IMailer)
class OutboxMailer:
    def __init__(self, directory: Optional[str]) -> None:
        self.directory = Path(directory) if directory else None

    def send(self, to: str, subject: str, text: str) -> None:
        if self.directory is None:
            log.warn("no mail outbox is configured; a message to a user was not sent")
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = self.directory / f"{secrets.token_hex(8)}.json"
            tmp = name.with_suffix(".tmp")
            tmp.write_text(json.dumps({"to": to, "subject": subject, "text": text}))
            os.chmod(tmp, 0o600)
            tmp.rename(name)
        except OSError as e:
            log.error("could not write mail to the outbox: {error}", error=str(e))
