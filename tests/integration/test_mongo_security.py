"""MongoDB with authentication and TLS, through the real server: the embedded
database (secantusd-py) run with --auth and a throw-away CA's certificate.

txmongo authenticates with SCRAM-SHA-1 only, so the MongoDB user must have
SCRAM-SHA-1 among its mechanisms; a SCRAM-SHA-256-only user cannot log in.
The password never shows in the server's log, its error bodies or
`crackershop config`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
import trustme

from tests.support import Process, Server, child_env, free_port, register, tool, unique, wait_until

PASSWORD = "Very-S3cret-Mongo-Pw"


class SecureMongo(Process):
    """secantusd-py serving TLS, with or without --auth."""

    def __init__(self, workdir: Path, port: int, cert: Path, key: Path, auth: bool) -> None:
        args = [
            tool("secantusd-py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(workdir / "data"),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
        ]
        super().__init__(
            args + (["--auth"] if auth else []),
            child_env({}),
            workdir,
            workdir / f"secantus-{'auth' if auth else 'open'}.log",
        )
        wait_until(lambda: re.search(r"listening on", self.output()), 60, "secantus to listen")


@pytest.fixture(scope="module")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A TLS database with two users (SCRAM-SHA-1 and SHA-256-only), restarted with --auth."""
    workdir = tmp_path_factory.mktemp("securemongo")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = workdir / "db.crt", workdir / "db.key", workdir / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key.write_bytes(issued.private_key_pem.bytes())
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    tls = f"tls=true&tlsCAFile={ca_file}"
    setup = SecureMongo(workdir, port, cert, key, auth=False)
    try:
        client: Any = pymongo.MongoClient(
            f"mongodb://127.0.0.1:{port}/?{tls}", serverSelectionTimeoutMS=10000
        )
        client.admin.command(
            "createUser", "shop", pwd=PASSWORD, roles=["root"], mechanisms=["SCRAM-SHA-1"]
        )
        client.admin.command(
            "createUser", "modern", pwd=PASSWORD, roles=["root"], mechanisms=["SCRAM-SHA-256"]
        )
        client.close()
    finally:
        setup.stop()
    db = SecureMongo(workdir, port, cert, key, auth=True)
    yield {"port": port, "tls": tls, "workdir": workdir}
    db.stop()


def _leaks(server: Server, *bodies: str) -> list[str]:
    return [text[:200] for text in (server.output(), *bodies) if PASSWORD in text]


def test_authenticated_tls_database_serves_the_shop(tmp_path: Path, mongo: dict[str, Any]) -> None:
    """A URI with user, password, authSource and TLS (and no database name)
    connects, authenticates and serves; the password is nowhere to be seen."""
    uri = f"mongodb://shop:{PASSWORD}@127.0.0.1:{mongo['port']}/?{mongo['tls']}&authSource=admin"
    server = Server(tmp_path / "srv", env={"MONGO_URI": uri, "MONGO_DB": "authshop"})
    try:
        with server.client() as c:
            token = register(c, unique("secure") + "@example.com")["token"]
            me = c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200
            ready = c.get("/ready").text
        shown = subprocess.run(
            [tool("crackershop"), "config"],
            env=child_env({"MONGO_URI": uri}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert "mongodb://shop:********@127.0.0.1" in shown.stdout
        assert not _leaks(server, ready, me.text, shown.stdout, shown.stderr)
    finally:
        assert server.stop() == 0
    assert not _leaks(server)
    assert "using MongoDB at mongodb://shop:********@" in server.output()


@pytest.mark.parametrize(
    "case", ["wrong-password", "sha256-only-user", "no-credentials", "untrusted-ca"]
)
def test_database_refusals_never_leak_the_password(
    tmp_path: Path, mongo: dict[str, Any], case: str
) -> None:
    """Each refusal keeps the server unready (503 JSON) and the password out of
    the log and the bodies."""
    user, password, tls = "shop:", PASSWORD, mongo["tls"]
    if case == "wrong-password":
        password = PASSWORD + "-wrong"
    elif case == "sha256-only-user":
        user = "modern:"
    elif case == "no-credentials":
        user, password = "", ""
    else:
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        tls = f"tls=true&tlsCAFile={other}"
    at = "@" if user else ""
    uri = f"mongodb://{user}{password}{at}127.0.0.1:{mongo['port']}/?{tls}&authSource=admin"
    server = Server(
        tmp_path / "srv",
        env={"MONGO_URI": uri, "MONGO_DB": "refused", "REQUEST_TIMEOUT": "3s"},
        wait=False,
    )
    try:

        def answered() -> httpx.Response:
            return httpx.get(server.url + "/ready", timeout=10)

        ready = wait_until(answered, 60, "the server to answer /ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["success"] is False
        with server.client() as c:
            r = c.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "password123"})
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "database_unavailable"
        if case in ("wrong-password", "sha256-only-user"):
            wait_until(
                lambda: "the database refused this server" in server.output(), 30, "the log line"
            )
        assert not _leaks(server, ready.text, r.text)
    finally:
        server.stop()
    assert not _leaks(server)
    assert "Traceback" not in server.output()
