"""HTTPS through the real server with a throw-away CA (trustme): TLS 1.2+
only, the redirect port, HSTS, a restart that serves a renewed certificate,
and start-up refusing an unusable certificate or key."""

from __future__ import annotations

import socket
import ssl
import subprocess
import warnings
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support import Secantus, Server, child_env, free_port, tool


def write_pair(ca: trustme.CA, where: Path, name: str) -> tuple[Path, Path]:
    """A certificate (with its chain) and key for 127.0.0.1, as PEM files."""
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = where / f"{name}.crt", where / f"{name}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key.write_bytes(issued.private_key_pem.bytes())
    return cert, key


def client_context(ca: trustme.CA, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that trusts the CA and speaks no TLS version above ``version``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(ctx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # on purpose: old versions
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = version
    # let this client offer the old versions at all (OpenSSL's level 0)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def handshake(port: int, ctx: ssl.SSLContext) -> bytes:
    """Shake hands with 127.0.0.1:port; the server's certificate (DER)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # closes raw too
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der


def test_https_serves_tls12_and_up_only(tmp_path: Path, secantus: Secantus) -> None:
    """HTTPS answers with HSTS; TLS 1.2 and 1.3 connect; 1.0 and 1.1 are refused;
    the redirect port sends plain HTTP to HTTPS with a JSON body."""
    ca = trustme.CA()
    cert, key = write_pair(ca, tmp_path, "one")
    redirect = free_port()
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    server = Server(
        tmp_path / "srv",
        env={
            "MONGO_URI": secantus.uri,
            "TLS_CERT": str(cert),
            "TLS_KEY": str(key),
            "HTTP_REDIRECT_PORT": str(redirect),
            "HSTS_MAX_AGE": "600",
        },
        verify=verify,
    )
    try:
        with server.client() as c:
            r = c.get("/health")
            assert r.status_code == 200
            assert r.headers["strict-transport-security"] == "max-age=600; includeSubDomains"
            assert c.get("/nope").headers["strict-transport-security"]
        handshake(server.port, client_context(ca, ssl.TLSVersion.TLSv1_2))
        handshake(server.port, client_context(ca, ssl.TLSVersion.TLSv1_3))
        for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with pytest.raises(ssl.SSLError) as refused:
                handshake(server.port, client_context(ca, old))
            # the server refused it, not this client's OpenSSL
            assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value).upper()
        r = httpx.get(f"http://127.0.0.1:{redirect}/api/v1/products?page=2", timeout=10)
        assert r.status_code == 308
        target = f"https://127.0.0.1:{server.port}/api/v1/products?page=2"
        assert r.headers["location"] == target
        assert r.json()["code"] == "https_required"
        assert r.headers["content-type"].startswith("application/json")
        with httpx.Client(verify=verify, timeout=10, follow_redirects=True) as c:
            assert c.get(f"http://127.0.0.1:{redirect}/api").json()["success"] is True
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/health", timeout=5)  # not trusted without the CA
    finally:
        assert server.stop() == 0, server.output()[-2000:]
    assert "Traceback" not in server.output()


def test_restart_serves_a_renewed_certificate(tmp_path: Path, secantus: Secantus) -> None:
    """The certificate files are read when the server starts: replace them,
    restart, and the new certificate is served."""
    ca = trustme.CA()
    cert, key = write_pair(ca, tmp_path, "site")
    env = {"MONGO_URI": secantus.uri, "TLS_CERT": str(cert), "TLS_KEY": str(key)}
    ctx = client_context(ca, ssl.TLSVersion.TLSv1_3)
    first = Server(tmp_path / "srv", env=env, verify=ctx)
    try:
        before = handshake(first.port, ctx)
    finally:
        assert first.stop() == 0
    renewed = trustme.CA()  # a renewal may even come from another CA
    new_cert, new_key = write_pair(renewed, tmp_path, "renewed")
    cert.write_bytes(new_cert.read_bytes())
    key.write_bytes(new_key.read_bytes())
    ctx = client_context(renewed, ssl.TLSVersion.TLSv1_3)
    second = Server(tmp_path / "srv", env=env, verify=ctx)
    try:
        after = handshake(second.port, ctx)
    finally:
        assert second.stop() == 0
    assert after != before
    assert ssl.DER_cert_to_PEM_cert(after).strip() in new_cert.read_text()


@pytest.mark.parametrize("problem", ["missing", "mismatched", "not-pem"])
def test_unusable_certificate_stops_start_up(tmp_path: Path, problem: str) -> None:
    """A missing, mismatched or garbled certificate/key stops start-up with
    one line naming the file and exit code 1, no traceback."""
    ca = trustme.CA()
    cert, key = write_pair(ca, tmp_path, "a")
    _, other_key = write_pair(trustme.CA(), tmp_path, "b")
    if problem == "missing":
        cert = tmp_path / "absent.crt"
    elif problem == "mismatched":
        key = other_key
    else:
        cert.write_text("hello")
    settings = {
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "MONGO_URI": "mongodb://127.0.0.1:1",
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
    }
    done = subprocess.run(
        [tool("twistd"), "-n", "--pidfile=", "crackershop"],
        env=child_env(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "#critical]" in line]
    assert len(lines) == 1, output
    expected = {"missing": "absent.crt", "mismatched": "does not match", "not-pem": "not a PEM"}
    assert expected[problem] in lines[0], lines
