"""What MONGO_URI asks of the connection: credentials txmongo would skip,
mechanisms it cannot speak, TLS files, and no password in any message."""

from __future__ import annotations

from pathlib import Path

import pytest

from crackershop.config import mask_uri
from crackershop.store.connect import MongoSetupError, connection_settings

SECRET = "pa55-w0rd-Secret"


def test_credentials_without_a_database_are_authenticated_against_admin() -> None:
    """txmongo only logs in when the URI names a database; without one we do, on authSource."""
    plain = connection_settings(f"mongodb://shop:{SECRET}@db.example:27017/")
    assert plain.credentials is not None
    assert (plain.credentials.source, plain.credentials.username) == ("admin", "shop")
    other = connection_settings(f"mongodb://shop:{SECRET}@db.example/?authSource=users")
    assert other.credentials is not None and other.credentials.source == "users"
    # with a database in the path txmongo logs in itself
    assert connection_settings(f"mongodb://shop:{SECRET}@db.example/shop").credentials is None
    assert connection_settings("mongodb://db.example/").tls is None


def test_unsupported_mechanism_is_refused_with_advice() -> None:
    """SCRAM-SHA-256 cannot be spoken by txmongo: say so at start-up."""
    with pytest.raises(MongoSetupError) as refused:
        connection_settings(f"mongodb://shop:{SECRET}@db/?authMechanism=SCRAM-SHA-256")
    assert "SCRAM-SHA-1" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_tls_options_build_a_client_context(tmp_path: Path) -> None:
    """tls=true with a CA file gives txmongo a TLS context; a missing file is one clear line."""
    import trustme

    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    assert connection_settings(f"mongodb://db.example/?tls=true&tlsCAFile={ca}").tls is not None
    assert connection_settings("mongodb://db.example/?ssl=true").tls is not None
    with pytest.raises(MongoSetupError) as refused:
        connection_settings(f"mongodb://u:{SECRET}@db/?tls=true&tlsCAFile={tmp_path}/none.pem")
    assert "none.pem" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_masked_uri_hides_passwords_in_userinfo_and_query() -> None:
    """`crackershop config` and the logs show the URI without any password."""
    shown = mask_uri(
        f"mongodb://shop:{SECRET}@db/x?tls=true&tlsCertificateKeyFilePassword={SECRET}"
    )
    assert SECRET not in shown
    assert shown.startswith("mongodb://shop:********@db/x?tls=true&")
