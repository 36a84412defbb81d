"""Development conveniences of the settings: a kept JWT secret, and how
``crackershop config`` shows values that were not given."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crackershop.config import ConfigError, declarations, kept_secret, load, mask


def test_the_development_secret_is_kept_in_the_data_directory(tmp_path: Path) -> None:
    """Without JWT_SECRET, development makes one secret, mode 0600 in DATA_DIR, and
    reads the same one on the next start; an unkeepable place falls back to a random one."""
    env = {"DATA_DIR": str(tmp_path / "data" / "db")}
    first, warnings = load({}, env, keep_secret=True)
    path = tmp_path / "data" / "db" / "jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first.jwt_secret and len(first.jwt_secret) >= 32
    assert any(str(path) in w for w in warnings)
    second, _ = load({}, env, keep_secret=True)
    assert second.jwt_secret == first.jwt_secret
    assert list(path.parent.iterdir()) == [path]
    # a file where the directory should be: cannot keep it, a secret for this run
    blocked = tmp_path / "file"
    blocked.write_text("")
    config, warnings = load({}, {"DATA_DIR": str(blocked / "db")}, keep_secret=True)
    assert len(config.jwt_secret) >= 32 and any("random secret" in w for w in warnings)


def test_a_short_kept_secret_is_not_used(tmp_path: Path) -> None:
    """A truncated secret file is never used for signing."""
    (tmp_path / "jwt-secret").write_text("short\n")
    assert kept_secret(str(tmp_path), lambda: "x" * 64) is None


def test_production_still_requires_jwt_secret(tmp_path: Path) -> None:
    """Production never uses a kept development secret."""
    load({}, {"DATA_DIR": str(tmp_path)}, keep_secret=True)
    with pytest.raises(ConfigError, match="JWT_SECRET is not set"):
        load({}, {"NODE_ENV": "production", "DATA_DIR": str(tmp_path)}, keep_secret=True)


def test_config_shows_auto_and_not_set() -> None:
    """WORKERS=auto prints as auto, and a secret given nowhere as "not set"."""
    config, _ = load({}, {"WORKERS": "auto", "JWT_SECRET": "s" * 40})
    shown = config.masked(unset={"REDIS_URL", "MONGO_URI"})
    assert shown["WORKERS"] == "auto"
    assert shown["MONGO_URI"] == "not set" and shown["REDIS_URL"] == "not set"
    assert shown["JWT_SECRET"] == "********"
    assert config.masked(unset={"JWT_SECRET"})["JWT_SECRET"] == "not set"
    workers = dict(declarations())["workers"]
    assert mask(workers, 4) == "4"
