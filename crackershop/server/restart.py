"""A single-process server restarting in place: SIGHUP (``systemctl
reload``) and ``crackershop restart`` with ``--workers=0``.

The process stays, and so does its listening socket and every connection it
has accepted: the settings are read again (command line as given at start,
then the environment, then ``.env``), the TLS certificate and key are read
again, and a new site is built from them. New connections are served by
the new site; connections already open finish on the old one. The database
pool stays open. Settings that a running process cannot take on (where it
listens, which database, its directories, clustering) keep their old value
until the server is started again, and the log says so. A configuration
that does not load, or a certificate pair that does not match, is refused
and the server goes on as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Callable, Optional

from twisted.logger import Logger

from crackershop.config import Config, ConfigError, declarations, from_environment

log = Logger()

# What only a new start can change.
FIXED = (
    "environment",
    "host",
    "port",
    "workers",
    "enable_clustering",
    "mongo_uri",
    "mongo_db",
    "mongo_max_pool_size",
    "mongo_min_pool_size",
    "mongo_max_connecting",
    "data_dir",
    "run_dir",
    "log_dir",
    "log_level",
    "log_max_size",
    "log_max_files",
    "http_redirect_port",
    "reload",
)


class RestartRefused(Exception):
    """The new configuration or certificates cannot be used; the message says why."""


class InPlace:
    """``serve(config)`` makes a site of ``config`` and puts it on the
    listening socket, or raises and changes nothing."""

    def __init__(
        self,
        config: Config,
        given: Mapping[str, str],
        serve: Callable[[Config], None],
        load: Callable[[Mapping[str, str]], Any] = from_environment,
    ) -> None:
        self.config = config
        self.given = dict(given)
        self.serve = serve
        self.load = load
        self.restarts = 0
        # refused restarts, and why the last one was (for `crackershop status`)
        self.refused = 0
        self.refusal: Optional[str] = None

    def restart(self) -> dict[str, Any]:
        try:
            new, warnings = self.load(self.given)
        except ConfigError as e:
            self._refused(str(e))
            raise RestartRefused(f"the new configuration does not load: {e}") from None
        kept = {name: getattr(self.config, name) for name in FIXED}
        changed = sorted(
            decl.env
            for name, decl in declarations()
            if name in kept and getattr(new, name) != kept[name]
        )
        if changed:
            log.warn(
                "{names} changed: a running server keeps the old value until it is started again",
                names=", ".join(changed),
            )
        new = replace(new, **kept)
        try:
            self.serve(new)
        except Exception as e:
            self._refused(str(e))
            raise RestartRefused(str(e)) from None
        for warning in warnings:
            log.warn("{warning}", warning=warning)
        self.config = new
        self.restarts += 1
        log.info("restarted in place: settings and certificates read again, no connection closed")
        return {
            "replaced": [0],
            "workers": [0],
            "message": "restarted in place (settings and certificates read again)",
            "kept": changed,
        }

    def _refused(self, why: str) -> None:
        self.refused += 1
        self.refusal = why
        log.error("restart refused, the server goes on as it was: {error}", error=why)
