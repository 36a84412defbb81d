"""The SMTP mailer: off the request path, retried with back-off, given up on
a permanent refusal; the message it composes."""

from __future__ import annotations

import email
import email.policy
from typing import Any

from twisted.internet.task import Clock
from twisted.mail.smtp import SMTPConnectError, SMTPDeliveryError

from crackershop.app.mail import OutboxMailer, Relay, SmtpMailer, make_mailer

RELAY = Relay("mail.test", 587, "Shop <no-reply@shop.test>", user="u", password="p")


class Connector:
    """Records each connection attempt's factory instead of connecting."""

    def __init__(self) -> None:
        self.factories: list[Any] = []

    def __call__(self, factory: Any) -> None:
        self.factories.append(factory)

    def fail(self, error: Exception) -> None:
        self.factories[-1].result.errback(error)


def mailer() -> tuple[Clock, Connector, SmtpMailer]:
    clock = Clock()
    clock.advance(1_790_000_000)
    connect = Connector()
    return clock, connect, SmtpMailer(clock, RELAY, connect, delays=(5.0, 15.0))


def test_send_returns_before_any_connection() -> None:
    """send only schedules: the connection is opened on a later turn of the reactor."""
    clock, connect, smtp = mailer()
    smtp.send("a@example.com", "Hello", "text")
    assert connect.factories == []
    clock.advance(0)
    [factory] = connect.factories
    assert factory.toEmail == [b"a@example.com"] and factory.username == b"u"
    assert factory._requireTransportSecurity and factory._requireAuthentication


def test_failures_are_retried_with_growing_delays_then_given_up() -> None:
    """A relay that cannot be reached is tried again after 5 s, then 15 s, then no more."""
    clock, connect, smtp = mailer()
    smtp.send("a@example.com", "Hello", "text")
    clock.advance(0)
    connect.fail(SMTPConnectError(-1, "refused"))
    clock.advance(4.9)
    assert len(connect.factories) == 1
    clock.advance(0.1)
    assert len(connect.factories) == 2
    connect.fail(SMTPConnectError(-1, "refused"))
    clock.advance(14.9)
    assert len(connect.factories) == 2
    clock.advance(0.1)
    assert len(connect.factories) == 3 and smtp.pending == 1
    connect.fail(SMTPConnectError(-1, "refused"))
    clock.advance(3600)
    assert len(connect.factories) == 3 and smtp.pending == 0


def test_a_permanent_refusal_is_not_retried_and_success_ends_it() -> None:
    """A 550 from the relay ends the delivery; an accepted one is done at once."""
    clock, connect, smtp = mailer()
    smtp.send("a@example.com", "Hello", "text")
    clock.advance(0)
    connect.fail(SMTPDeliveryError(550, b"no such user"))
    clock.advance(3600)
    assert len(connect.factories) == 1 and smtp.pending == 0
    smtp.send("b@example.com", "Hello", "text")
    clock.advance(0)
    connect.factories[-1].result.callback((1, []))
    assert smtp.pending == 0


def test_the_message_has_the_headers_a_relay_expects() -> None:
    """From, To, Subject, Date and Message-ID, in LF lines (the client adds CR)."""
    clock, connect, smtp = mailer()
    smtp.send("a@example.com", "Réinitialiser", "Use this link: https://shop.test/r?token=abc\n")
    clock.advance(0)
    raw = connect.factories[0].file.getvalue()
    assert b"\r" not in raw
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["From"] == "Shop <no-reply@shop.test>" and message["To"] == "a@example.com"
    assert message["Subject"] == "Réinitialiser" and message["Message-ID"].endswith("@shop.test>")
    assert "token=abc" in message.get_content()


def test_the_outbox_is_used_without_a_relay(tmp_path: Any) -> None:
    """Without SMTP_HOST the outbox folder receives the mail, as in development."""
    from crackershop.config import load

    config, _ = load({}, {"JWT_SECRET": "s" * 40, "MAIL_OUTBOX": str(tmp_path)})
    outbox = make_mailer(Clock(), config)
    assert isinstance(outbox, OutboxMailer)
    outbox.send("a@example.com", "Hi", "text")
    assert len(list(tmp_path.glob("*.json"))) == 1
    config, _ = load(
        {}, {"JWT_SECRET": "s" * 40, "SMTP_HOST": "mail.test", "SMTP_FROM": "x@shop.test"}
    )
    assert isinstance(make_mailer(Clock(), config), SmtpMailer)
