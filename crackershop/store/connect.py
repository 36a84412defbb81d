"""What MONGO_URI asks of the connection beyond host and port: TLS
(``tls=true``/``ssl=true``, ``tlsCAFile``, ``tlsCertificateKeyFile``) and
authentication (user and password, ``authSource``, ``authMechanism``).

txmongo takes TLS as a context factory and authenticates with SCRAM-SHA-1
(or MONGODB-X509) only, and only when the URI names a database; this module
reads the URI once and hands txmongo what it needs. Problems are raised as
:class:`MongoSetupError` with one line that never contains the password.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import attr

# What txmongo 26 can speak; "DEFAULT" is SCRAM-SHA-1 there.
MECHANISMS = ("DEFAULT", "SCRAM-SHA-1", "MONGODB-X509")


class MongoSetupError(Exception):
    """MONGO_URI asks for something that cannot be done; the message says what."""


@attr.s(auto_attribs=True, frozen=True)
class Credentials:
    source: str
    username: str
    password: str
    mechanism: str


@attr.s(auto_attribs=True, frozen=True)
class Connection:
    tls: Any = None
    # Set when txmongo would not authenticate by itself (no database in the URI).
    credentials: Optional[Credentials] = None


def _scrub(text: str, secret: Optional[str]) -> str:
    return text.replace(secret, "********") if secret else text


def connection_settings(uri: str) -> Connection:
    from pymongo.uri_parser import parse_uri

    password: Optional[str] = None
    try:
        parsed = parse_uri(uri, connect_timeout=5)
    except Exception as e:
        from urllib.parse import unquote, urlsplit

        try:
            password = unquote(urlsplit(uri).password or "") or None
        except ValueError:
            password = None
        raise MongoSetupError(f"MONGO_URI is not usable: {_scrub(str(e), password)}") from None
    options = {str(k).lower(): v for k, v in parsed["options"].items()}
    mechanism = str(options.get("authmechanism") or "DEFAULT").upper()
    if parsed.get("username") and mechanism not in MECHANISMS:
        raise MongoSetupError(
            f"MONGO_URI authMechanism={mechanism} is not supported: the driver (txmongo) "
            "speaks SCRAM-SHA-1 and MONGODB-X509; give the MongoDB user SCRAM-SHA-1"
        )
    credentials = None
    if parsed.get("username") and parsed.get("password") and not parsed.get("database"):
        credentials = Credentials(
            str(options.get("authsource") or "admin"),
            parsed["username"],
            parsed["password"],
            mechanism,
        )
    tls = None
    if options.get("tls") or options.get("ssl"):
        host = parsed["nodelist"][0][0]
        tls = client_tls(host, options.get("tlscafile"), options.get("tlscertificatekeyfile"))
    return Connection(tls, credentials)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise MongoSetupError(f"MONGO_URI {what} {path}: {e.strerror or e}") from None


def client_tls(host: str, ca_file: Optional[str], key_file: Optional[str]) -> Any:
    """TLS 1.2+ to MongoDB, checking the server's certificate and name
    against the CA file (or the system's trust store without one)."""
    from cryptography import x509
    from twisted.internet.ssl import (
        Certificate,
        PrivateCertificate,
        TLSVersion,
        optionsForClientTLS,
        platformTrust,
        trustRootFromCertificates,
    )

    trust: Any = platformTrust()
    if ca_file:
        pem = _read(ca_file, "tlsCAFile")
        try:
            cas = x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise MongoSetupError(f"MONGO_URI tlsCAFile {ca_file}: not a PEM certificate") from None
        from OpenSSL.crypto import X509

        trust = trustRootFromCertificates([Certificate(X509.from_cryptography(c)) for c in cas])
    client: Any = None
    if key_file:
        try:
            client = PrivateCertificate.loadPEM(_read(key_file, "tlsCertificateKeyFile"))
        except Exception:
            raise MongoSetupError(
                f"MONGO_URI tlsCertificateKeyFile {key_file}: not a PEM certificate and key"
            ) from None
    return optionsForClientTLS(
        host,
        trustRoot=trust,
        clientCertificate=client,
        extraCertificateOptions={"raiseMinimumTo": TLSVersion.TLSv1_2},
    )
