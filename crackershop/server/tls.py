"""HTTPS for the shop's listener: the server TLS context, built from the
certificate and key files each time a listener starts (so a restart, or a
rolling restart of the workers, serves renewed files), and the plain-HTTP
port that only redirects to HTTPS.

:func:`server_options` is what a listener needs; it raises
:class:`TLSSetupError` with one line naming the problem, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from twisted.web import resource, server
from twisted.web.iweb import IRequest

# TLS 1.2 suites with forward secrecy and AEAD only (Mozilla "intermediate");
# TLS 1.3 suites are all modern and are chosen by OpenSSL itself.
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


class TLSSetupError(Exception):
    """The certificate or key cannot be used; the message says why."""


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TLSSetupError(f"{what} {path}: {e.strerror or e}") from None


def server_options(cert_path: str, key_path: str) -> Any:
    """A ``CertificateOptions`` for serving TLS 1.2+ with modern ciphers,
    read from the PEM files now. The certificate file may carry the chain
    after the server's own certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import SSL
    from OpenSSL.crypto import X509, PKey
    from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion

    cert_pem = _read(cert_path, "TLS_CERT")
    key_pem = _read(key_path, "TLS_KEY")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TLSSetupError(f"TLS_CERT {cert_path}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TLSSetupError(f"TLS_KEY {key_path}: not an unencrypted PEM private key") from None
    try:
        options = CertificateOptions(
            privateKey=PKey.from_cryptography_key(key),  # type: ignore[arg-type]
            certificate=X509.from_cryptography(chain[0]),
            extraCertChain=[X509.from_cryptography(c) for c in chain[1:]],
            raiseMinimumTo=TLSVersion.TLSv1_2,
            acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(CIPHERS),
        )
        # Build the context now: a key that does not match the certificate
        # is refused at start-up, not at the first handshake.
        options.getContext()
    except SSL.Error:
        raise TLSSetupError(
            f"TLS_KEY {key_path} does not match the certificate in TLS_CERT {cert_path}"
        ) from None
    return options


class RedirectToHttps(resource.Resource):
    """Every request answered with a 308 to the same path over HTTPS."""

    isLeaf = True

    def __init__(self, https_port: int, public_url: str = "") -> None:
        super().__init__()
        self.https_port = https_port
        self.public_url = public_url.rstrip("/") if public_url.startswith("https://") else ""

    def _base(self, request: IRequest) -> Optional[str]:
        if self.public_url:
            return self.public_url
        raw = request.getHeader(b"host") or b""
        try:
            host = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            return None
        if host.startswith("["):
            name = host[: host.find("]") + 1] if "]" in host else ""
        else:
            name = host.rsplit(":", 1)[0] if ":" in host else host
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:")
        if not name or not set(name) <= allowed:
            return None
        port = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{name}{port}"

    def render(self, request: IRequest) -> bytes:
        from crackershop.app.http import JSON_TYPE, apply_standard_headers

        apply_standard_headers(request)
        request.setHeader(b"content-type", JSON_TYPE)
        base = self._base(request)
        if base is None:
            request.setResponseCode(400)
            body = {"success": False, "error": "Missing or invalid Host", "code": "bad_request"}
            return json.dumps(body).encode("utf-8")
        path = request.uri.decode("ascii", "replace")
        target = base + (path if path.startswith("/") else "/")
        request.setResponseCode(308)
        request.setHeader(b"location", target.encode("ascii", "replace"))
        body = {
            "success": False,
            "error": "HTTPS is required",
            "code": "https_required",
            "location": target,
        }
        return json.dumps(body).encode("utf-8")


class RedirectSite(server.Site):
    noisy = False

    def __init__(self, https_port: int, public_url: str = "", reactor: Any = None) -> None:
        super().__init__(RedirectToHttps(https_port, public_url), reactor=reactor)

    def log(self, request: Any) -> None:
        return None
