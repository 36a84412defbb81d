"""A single process restarting in place: what it reads again, what it keeps,
and what it refuses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from crackershop.config import Config, load
from crackershop.server.restart import InPlace, RestartRefused

SECRET = "s" * 40


def loader(env: dict[str, str]) -> Any:
    def read(given: Mapping[str, str]) -> Any:
        return load(given, env)

    return read


def test_new_settings_are_served_and_fixed_ones_kept() -> None:
    """Origins from the new environment reach the new site; a new PORT does not."""
    env = {"JWT_SECRET": SECRET, "PORT": "5000"}
    config, _ = load({}, env)
    served: list[Config] = []
    restart = InPlace(config, {}, served.append, loader(env))
    env.update({"ALLOWED_ORIGINS": "https://new.example", "PORT": "6000"})
    result = restart.restart()
    assert served[0].allowed_origins == ("https://new.example",) and served[0].port == 5000
    assert result["kept"] == ["PORT"] and restart.config is served[0]


def test_a_bad_configuration_or_certificate_changes_nothing() -> None:
    """A value that does not parse, or a site that cannot be served, is refused."""
    env = {"JWT_SECRET": SECRET}
    config, _ = load({}, env)

    def serve(new: Config) -> None:
        raise ValueError("TLS_KEY does not match TLS_CERT")

    restart = InPlace(config, {}, serve, loader(env))
    with pytest.raises(RestartRefused, match="does not match"):
        restart.restart()
    env["MAX_REQUEST_SIZE"] = "lots"
    with pytest.raises(RestartRefused, match="MAX_REQUEST_SIZE='lots' is invalid"):
        restart.restart()
    assert restart.config is config and restart.restarts == 0


def test_the_command_line_still_wins() -> None:
    """Options given at start are given again: they beat the new environment."""
    env = {"JWT_SECRET": SECRET}
    config, _ = load({"bcrypt_rounds": "5"}, env)
    served: list[Config] = []
    restart = InPlace(config, {"bcrypt_rounds": "5"}, served.append, loader(env))
    env["BCRYPT_ROUNDS"] = "12"
    restart.restart()
    assert served[0].bcrypt_rounds == 5
