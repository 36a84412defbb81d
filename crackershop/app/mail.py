"""Outgoing mail (password resets).

With a relay (``SMTP_HOST``) each message is sent through it with Twisted's
own SMTP client (``twisted.mail.smtp.ESMTPSenderFactory``): STARTTLS (or TLS
from the first byte) with the relay's certificate checked, AUTH when
``SMTP_USER`` is set. Sending never happens on the request's path: ``send``
only schedules it, and a failed attempt is tried again with growing delays
(:data:`RETRY_DELAYS`) until the relay takes it or refuses it for good.
Messages waiting for a retry live in the process's memory.

Without a relay, messages are written to an outbox directory (one JSON file
each) for a developer or a test to read.
"""

from __future__ import annotations

import json
import os
import secrets
from email.message import EmailMessage
from email.policy import default as mail_policy
from email.utils import formatdate, make_msgid, parseaddr
from io import BytesIO
from pathlib import Path
from typing import Any, Callable, Optional

import attr
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

log = Logger()

# Seconds before each retry: the last attempt is about 21 minutes after the
# first, well within a reset token's hour.
RETRY_DELAYS = (5.0, 15.0, 60.0, 300.0, 900.0)
TIMEOUT = 30


class IMailer(Interface):
    def send(to: str, subject: str, text: str) -> None:
        """Send (or queue) one message; never raises, never waits."""


@implementer(IMailer)
class OutboxMailer:
    def __init__(self, directory: Optional[str]) -> None:
        self.directory = Path(directory) if directory else None

    def send(self, to: str, subject: str, text: str) -> None:
        if self.directory is None:
            log.warn("no mail relay or outbox is configured; a message to a user was not sent")
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


@attr.s(auto_attribs=True, frozen=True)
class Relay:
    host: str
    port: int
    sender: str
    user: str = ""
    password: str = attr.ib(default="", repr=False)
    tls: str = "starttls"  # starttls, tls or off
    ca_file: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@attr.s(auto_attribs=True)
class Delivery:
    to: str
    message: bytes
    message_id: str
    attempt: int = 0


def client_tls(relay: Relay) -> Any:
    """The TLS options the relay's certificate and host name are checked with."""
    from twisted.internet.ssl import Certificate, optionsForClientTLS, trustRootFromCertificates

    if not relay.ca_file:
        return optionsForClientTLS(relay.host)
    pem = Path(relay.ca_file).read_bytes()
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in pem.split(marker) if b"-----BEGIN" in block]
    root = trustRootFromCertificates([Certificate.loadPEM(block) for block in blocks])
    return optionsForClientTLS(relay.host, trustRoot=root)


def permanent(failure: Failure) -> bool:
    """Whether the relay refused the message for good (a 5xx answer)."""
    from twisted.mail.smtp import SMTPDeliveryError

    if failure.check(SMTPDeliveryError):
        code = getattr(failure.value, "code", 0)
        return isinstance(code, int) and 500 <= code < 600
    return False


@implementer(IMailer)
class SmtpMailer:
    """Sends through ``relay``; ``connect(factory)`` opens the connection
    (the reactor's TCP or TLS connect by default)."""

    def __init__(
        self,
        reactor: Any,
        relay: Relay,
        connect: Optional[Callable[[Any], None]] = None,
        delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.reactor = reactor
        self.relay = relay
        self.delays = delays
        self.connect = connect or self._connect
        self._tls: Any = None
        self.pending = 0

    def send(self, to: str, subject: str, text: str) -> None:
        try:
            delivery = self._compose(to, subject, text)
        except Exception:
            log.failure("could not compose a mail")
            return
        self.pending += 1
        self.reactor.callLater(0, self._attempt, delivery)

    def _compose(self, to: str, subject: str, text: str) -> Delivery:
        message = EmailMessage()
        message["From"] = self.relay.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(self.reactor.seconds(), usegmt=True)
        domain = parseaddr(self.relay.sender)[1].rpartition("@")[2] or None
        message_id = make_msgid(domain=domain)
        message["Message-ID"] = message_id
        message.set_content(text)
        # LF line ends: Twisted's SMTP client turns each line end into CRLF itself
        return Delivery(to, message.as_bytes(policy=mail_policy), message_id)

    def _attempt(self, delivery: Delivery) -> None:
        from twisted.mail.smtp import ESMTPSenderFactory

        delivery.attempt += 1
        done: Deferred[Any] = Deferred()
        try:
            tls = self._options() if self.relay.tls != "off" else None
        except Exception as e:
            self._failed(Failure(e), delivery)
            return
        factory = ESMTPSenderFactory(
            self.relay.user.encode("utf-8") if self.relay.user else None,
            self.relay.password.encode("utf-8") if self.relay.user else None,
            parseaddr(self.relay.sender)[1],
            delivery.to,
            BytesIO(delivery.message),
            done,
            retries=0,
            timeout=TIMEOUT,
            contextFactory=tls,
            requireAuthentication=bool(self.relay.user),
            requireTransportSecurity=self.relay.tls != "off",
        )
        factory.noisy = False
        done.addCallbacks(lambda _: self._sent(delivery), self._failed, errbackArgs=(delivery,))
        self.connect(factory)

    def _options(self) -> Any:
        if self._tls is None:
            self._tls = client_tls(self.relay)
        return self._tls

    def _connect(self, factory: Any) -> None:
        if self.relay.tls == "tls":
            self.reactor.connectSSL(self.relay.host, self.relay.port, factory, self._options())
        else:
            self.reactor.connectTCP(self.relay.host, self.relay.port, factory)

    def _sent(self, delivery: Delivery) -> None:
        self.pending -= 1
        log.info(
            "mail {id} sent through {relay} (attempt {n})",
            id=delivery.message_id,
            relay=self.relay.address,
            n=delivery.attempt,
        )

    def _failed(self, failure: Failure, delivery: Delivery) -> None:
        why = str(failure.value) or type(failure.value).__name__
        if permanent(failure) or delivery.attempt > len(self.delays):
            self.pending -= 1
            log.error(
                "mail {id} not sent: {relay} {how} after {n} attempts: {why}",
                id=delivery.message_id,
                relay=self.relay.address,
                how="refused it" if permanent(failure) else "did not take it",
                n=delivery.attempt,
                why=why,
            )
            return
        delay = self.delays[delivery.attempt - 1]
        log.warn(
            "mail {id} not sent through {relay} yet ({why}); trying again in {delay:g}s",
            id=delivery.message_id,
            relay=self.relay.address,
            why=why,
            delay=delay,
        )
        self.reactor.callLater(delay, self._attempt, delivery)


def make_mailer(reactor: Any, config: Any) -> IMailer:
    """The relay when SMTP_HOST is set, else the outbox (if any)."""
    if config.smtp_host:
        relay = Relay(
            host=config.smtp_host,
            port=config.smtp_port,
            sender=config.smtp_from,
            user=config.smtp_user,
            password=config.smtp_password,
            tls=config.smtp_tls,
            ca_file=config.smtp_ca_file,
        )
        return SmtpMailer(reactor, relay)
    return OutboxMailer(config.mail_outbox or None)
