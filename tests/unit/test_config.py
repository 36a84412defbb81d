"""Settings: declared once, read by precedence, validated with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crackershop.config import (
    ConfigError,
    declarations,
    load,
    mask_uri,
    parse_duration,
    parse_size,
)

STRONG = "s" * 40


def test_defaults_follow_the_environment() -> None:
    """Development and production defaults differ where the contract says so."""
    dev, _ = load({}, {"JWT_SECRET": STRONG})
    prod, _ = load({}, {"NODE_ENV": "production", "JWT_SECRET": STRONG})
    assert (dev.mongo_max_pool_size, dev.mongo_min_pool_size) == (10, 5)
    assert (prod.mongo_max_pool_size, prod.mongo_min_pool_size) == (50, 20)
    assert (dev.rate_limit_max_requests, prod.rate_limit_max_requests) == (10_000, 1000)
    assert dev.port == 5000 and dev.max_request_size == 1024 * 1024


def test_precedence_cli_env_dotenv_default() -> None:
    """The command line beats the environment, which beats .env."""
    env = {"PORT": "6000", "JWT_SECRET": STRONG}
    dotenv = {"PORT": "7000", "LOG_LEVEL": "warn"}
    config, _ = load({"port": "8000"}, env, dotenv)
    assert config.port == 8000 and config.log_level == "warn"
    config, _ = load({}, env, dotenv)
    assert config.port == 6000
    config, _ = load({}, {"JWT_SECRET": STRONG}, dotenv)
    assert config.port == 7000


def test_old_backend_names_and_formats() -> None:
    """The old .env keeps working: JWT_EXPIRE like 12h, REQUEST_TIMEOUT in ms, 1mb sizes."""
    config, _ = load(
        {},
        {
            "JWT_SECRET": STRONG,
            "JWT_EXPIRE": "12h",
            "REQUEST_TIMEOUT": "30000",
            "MAX_REQUEST_SIZE": "2mb",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "ENABLE_CLUSTERING": "false",
        },
    )
    assert config.jwt_expire == 12 * 3600
    assert config.request_timeout == 30
    assert config.max_request_size == 2 * 1024 * 1024
    assert config.allowed_origins == ("https://a.example", "https://b.example")
    assert config.enable_clustering is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "abc"}, "PORT='abc' is invalid: must be an integer from 0 to 65535"),
        ({"NODE_ENV": "staging"}, "NODE_ENV='staging' is invalid"),
        ({"JWT_EXPIRE": "forever"}, "JWT_EXPIRE='forever' is invalid"),
        ({"MONGO_URI": "postgres://x"}, "MONGO_URI=(hidden) is invalid"),
    ],
)
def test_invalid_values_name_the_setting(env: dict, message: str) -> None:
    """A bad value is refused with a message naming the setting (never the secret)."""
    with pytest.raises(ConfigError) as e:
        load({}, {"JWT_SECRET": STRONG, **env})
    assert message in str(e.value)


def test_production_requires_a_strong_secret() -> None:
    """Production refuses a missing or short JWT_SECRET; development makes one up."""
    with pytest.raises(ConfigError, match="JWT_SECRET is not set"):
        load({}, {"NODE_ENV": "production"})
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        load({}, {"NODE_ENV": "production", "JWT_SECRET": "short"})
    config, warnings = load({}, {}, make_secret=lambda: "r" * 64)
    assert config.jwt_secret == "r" * 64
    assert any("random secret" in w for w in warnings)


def test_masking_hides_secrets() -> None:
    """crackershop config never shows the JWT secret or a URI password."""
    config, _ = load({}, {"JWT_SECRET": STRONG, "MONGO_URI": "mongodb://u:pw@h:1/db?tls=true"})
    shown = config.masked()
    assert STRONG not in str(shown) and "pw" not in shown["MONGO_URI"]
    assert shown["MONGO_URI"] == "mongodb://u:********@h:1/db?tls=true"
    assert mask_uri("mongodb://h:1") == "mongodb://h:1"


def test_every_setting_has_an_env_name_and_help() -> None:
    """Each declaration is complete, and env names are unique."""
    names = [decl.env for _, decl in declarations()]
    assert len(names) == len(set(names))
    assert all(decl.help for _, decl in declarations())


def test_parsers() -> None:
    """Durations and sizes read the forms operators write."""
    assert parse_duration("s")("30d") == 30 * 86400
    assert parse_duration("ms")("1500") == 1.5
    assert parse_size("512kb") == 512 * 1024
    with pytest.raises(ValueError):
        parse_size("-1mb")


def test_rate_limit_settings() -> None:
    """The limiter settings: API.md's production limits, development ones out of the
    app's way; REDIS_URL is masked, CIDRs are checked."""
    dev, _ = load({}, {"JWT_SECRET": STRONG})
    prod, _ = load({}, {"JWT_SECRET": STRONG, "NODE_ENV": "production"})
    assert (dev.rate_limit_max_requests, dev.rate_limit_write_max, dev.rate_limit_auth_max) == (
        10_000,
        500,
        5,
    )
    assert (prod.rate_limit_max_requests, prod.rate_limit_write_max, prod.rate_limit_auth_max) == (
        1000,
        500,
        20,
    )
    config, _ = load(
        {},
        {
            "JWT_SECRET": STRONG,
            "REDIS_URL": "redis://:hunter22@cache:6380/3",
            "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7",
        },
    )
    assert config.masked()["REDIS_URL"] == "redis://:********@cache:6380/3"
    assert config.trusted_proxies == ("10.0.0.0/8", "192.168.1.7/32")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load({}, {"JWT_SECRET": STRONG, "TRUSTED_PROXIES": "10.0.0.0/33"})
    with pytest.raises(ConfigError, match="REDIS_URL=\\(hidden\\)"):
        load({}, {"JWT_SECRET": STRONG, "REDIS_URL": "http://:pw@x"})


# A value other than the default for every setting, in the forms operators write.
SAMPLES = {
    "NODE_ENV": "production",
    "HOST": "127.0.0.2",
    "PORT": "6123",
    "WORKERS": "auto",
    "ENABLE_CLUSTERING": "false",
    "MONGO_URI": "mongodb://db.internal:27017/shop",
    "MONGO_DB": "shop2",
    "MONGO_MAX_POOL_SIZE": "12",
    "MONGO_MIN_POOL_SIZE": "3",
    "MONGO_MAX_CONNECTING": "4",
    "DATA_DIR": "/srv/db",
    "JWT_SECRET": STRONG,
    "JWT_EXPIRE": "12h",
    "BCRYPT_ROUNDS": "11",
    "ALLOWED_ORIGINS": "https://a.example,https://b.example",
    "RATE_LIMIT_WINDOW_MS": "60000",
    "RATE_LIMIT_MAX_REQUESTS": "20",
    "REDIS_HOST": "cache",
    "REDIS_PORT": "6380",
    "RATE_LIMIT_WRITE_MAX": "7",
    "RATE_LIMIT_AUTH_MAX": "3",
    "RATE_LIMIT_ENABLED": "false",
    "REDIS_URL": "redis://cache:6380/2",
    "REDIS_TIMEOUT": "1500",
    "TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.7",
    "RUN_DIR": "/run/shop",
    "LOG_LEVEL": "warn",
    "LOG_DIR": "/var/log/shop",
    "MAX_REQUEST_SIZE": "2mb",
    "MAX_UPLOAD_SIZE": "3mb",
    "MAX_UPLOAD_FILES": "4",
    "REQUEST_TIMEOUT": "45000",
    "MAIL_OUTBOX": "/srv/outbox",
    "SMTP_HOST": "mail.example",
    "SMTP_PORT": "465",
    "SMTP_USER": "shop",
    "SMTP_PASSWORD": "relay-secret-1",
    "SMTP_FROM": "Shop <no-reply@shop.example>",
    "SMTP_TLS": "tls",
    "SMTP_CA_FILE": "/etc/shop/mail-ca.pem",
    "GOOGLE_CLIENT_ID": "client.apps.example",
    "GOOGLE_CERTS_URL": "https://keys.example/certs",
    "PUBLIC_URL": "https://shop.example",
    "ORDER_MAX_LINES": "20",
    "ORDER_REPAIR_AFTER": "90",
    "CATALOGUE_CACHE_TTL": "0",
    "TLS_CERT": "/etc/shop/cert.pem",
    "TLS_KEY": "/etc/shop/key.pem",
    "HTTP_REDIRECT_PORT": "8080",
    "HSTS_MAX_AGE": "600",
    "JWT_LEEWAY": "2.5",
    "AUTH_CACHE_TTL": "750",
    "MAX_HEADERS": "50",
    "MAX_HEADERS_SIZE": "8kb",
    "RELOAD": "true",
    "MAX_MEMORY": "300mb",
    "GRACEFUL_TIMEOUT": "0.5",
    "LOG_MAX_SIZE": "5mb",
    "LOG_MAX_FILES": "9",
}


def _printed(environ: dict[str, str], monkeypatch: Any, capsys: Any, where: Path) -> dict[str, str]:
    """What `crackershop config` prints, as setting -> text."""
    from crackershop.cli import main

    for _, decl in declarations():
        for name in (decl.env, *decl.aliases):
            monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(where)
    assert main(["config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {name: value.strip() for name, _, value in (line.partition("  ") for line in lines)}


@pytest.mark.parametrize("environ", [{}, SAMPLES], ids=["defaults", "every-setting-changed"])
def test_config_output_reads_back_to_the_same_settings(
    environ: dict[str, str], monkeypatch: Any, capsys: Any, tmp_path: Path
) -> None:
    """Every setting printed by `crackershop config`, fed back in, gives the same value."""
    assert set(SAMPLES) == {decl.env for _, decl in declarations()}
    given = {"JWT_SECRET": STRONG, **environ}
    printed = _printed(given, monkeypatch, capsys, tmp_path)
    assert set(printed) == set(SAMPLES)
    # a secret is masked, and one given nowhere is "not set": secrets are given
    # again as they were
    secrets = {decl.env for _, decl in declarations() if decl.secret}
    fed_back = {name: value for name, value in printed.items() if value and name not in secrets}
    fed_back.update({name: given[name] for name in secrets if name in given})
    original, _ = load({}, given)
    again, _ = load({}, fed_back)
    assert again == original
    if environ:
        changed = [
            name
            for name, decl in declarations()
            if not decl.secret
            and getattr(original, name) == getattr(load({}, {"JWT_SECRET": STRONG})[0], name)
        ]
        assert changed == [], changed
        assert printed["REQUEST_TIMEOUT"] == "45s" and printed["REDIS_TIMEOUT"] == "1500ms"
        assert printed["AUTH_CACHE_TTL"] == "750ms" and printed["WORKERS"] == "auto"
