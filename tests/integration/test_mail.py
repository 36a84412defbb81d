"""Password-reset mail through a real SMTP relay (aiosmtpd on 127.0.0.1) with
STARTTLS and AUTH: it arrives with a link whose token resets the password,
also when the relay was down at first; without a relay production says so."""

from __future__ import annotations

import email
import email.policy
import re
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import Secantus, Server, child_env, free_port, register, tool, unique, wait_until

USER, PASSWORD = "shop-mailer", "relay-password-7"


class Inbox:
    """What the relay accepted, and who logged in."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[str] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
            self.raw.append(envelope.content)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == PASSWORD.encode()
        )
        if ok:
            with self.lock:
                self.logins.append(f"{mechanism} tls={session.ssl is not None}")
        return AuthResult(success=ok)


def relay(ca: trustme.CA, inbox: Inbox, port: int) -> Controller:
    """An SMTP server that offers STARTTLS and requires it, and AUTH, before mail."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_required=True,
    )
    controller.start()
    return controller


def test_reset_mail_arrives_through_starttls_and_auth(tmp_path: Path, secantus: Secantus) -> None:
    """The relay is down when the reset is asked for: the answer comes at once all
    the same; the mail arrives on a retry over STARTTLS after AUTH, and its link's
    token resets the password for a login."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    server = Server(
        tmp_path / "srv",
        env={
            "MONGO_URI": secantus.uri + "/mail",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_USER": USER,
            "SMTP_PASSWORD": PASSWORD,
            "SMTP_FROM": "CrackerShop <no-reply@shop.test>",
            "SMTP_CA_FILE": str(ca_file),
            "PUBLIC_URL": "https://shop.test",
        },
    )
    inbox = Inbox()
    controller = None
    address = unique("mail") + "@example.com"
    try:
        with server.client() as c:
            register(c, address)
            began = time.monotonic()
            r = c.post("/api/v1/auth/forgotpassword", json={"email": address})
            assert r.status_code == 200 and time.monotonic() - began < 2
            known = r.json()
            wait_until(lambda: "trying again in 5s" in server.output(), 30, "a failed attempt")
            controller = relay(ca, inbox, port)
            wait_until(lambda: inbox.messages, 30, "the mail")
            [(sender, recipients, message)] = inbox.messages
            assert sender == "no-reply@shop.test" and recipients == [address]
            assert (
                message["To"] == address and message["From"] == "CrackerShop <no-reply@shop.test>"
            )
            assert message["Subject"] == "Reset your CrackerShop password"
            assert message["Message-ID"] and message["Date"]
            assert b"\r\r" not in inbox.raw[0] and b"\r\nSubject: " in inbox.raw[0]
            assert inbox.logins and all(login.endswith("tls=True") for login in inbox.logins)
            link = re.search(r"https://shop\.test/reset-password\?token=\S+", message.get_content())
            assert link is not None, message.get_content()
            token = parse_qs(urlsplit(link.group(0)).query)["token"][0]
            r = c.post(
                "/api/v1/auth/resetpassword", json={"token": token, "password": "mailed-pass-1"}
            )
            assert r.status_code == 200, r.text
            r = c.post("/api/v1/auth/login", json={"email": address, "password": "mailed-pass-1"})
            assert r.status_code == 200, r.text
            # an unknown address: the same answer, and nothing is sent
            r = c.post("/api/v1/auth/forgotpassword", json={"email": unique("nobody") + "@x.test"})
            assert r.status_code == 200 and r.json() == known
        wait_until(lambda: "sent through 127.0.0.1" in server.output(), 10, "the sent line")
        assert PASSWORD not in server.output()
        assert len(inbox.messages) == 1
    finally:
        if controller is not None:
            controller.stop()
        assert server.stop() == 0, server.output()[-3000:]


def test_production_without_a_relay_warns_at_start(tmp_path: Path, secantus: Secantus) -> None:
    """NODE_ENV=production with no SMTP_HOST logs a warning at start; the reset
    request still answers as for any address."""
    server = Server(
        tmp_path,
        env={"MONGO_URI": secantus.uri + "/mail_prod", "NODE_ENV": "production", "MAIL_OUTBOX": ""},
    )
    try:
        assert "no mail relay is set up (SMTP_HOST)" in server.output()
        with server.client() as c:
            register(c, unique("prod") + "@example.com")
            r = c.post("/api/v1/auth/forgotpassword", json={"email": unique("x") + "@example.com"})
            assert r.status_code == 200
    finally:
        assert server.stop() == 0, server.output()[-3000:]


def test_smtp_host_without_a_sender_is_refused(tmp_path: Path) -> None:
    """SMTP_HOST without SMTP_FROM stops start-up with one line naming SMTP_FROM."""
    done = subprocess.run(
        [tool("crackershop"), "config"],
        cwd=tmp_path,
        env=child_env({"SMTP_HOST": "mail.example"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "crackershop: SMTP_FROM must be set with SMTP_HOST (the sender of outgoing mail)"
    )
