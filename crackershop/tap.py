"""twistd's entry: ``twistd -n crackershop [options]``.

:func:`makeService` returns the process's whole service tree: a cluster's
master (:func:`crackershop.cluster.master.master_service`) or a single
serving process (:func:`crackershop.server.process.single_process`). The
options are generated from :mod:`crackershop.config`; a bad option or value
stops start-up with one line naming it, and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

from twisted.application.service import IService
from twisted.logger import Logger
from twisted.python import usage

from crackershop import config as settings
from crackershop.config import Config, ConfigError, clustered, from_environment

log = Logger()
USAGE_ERROR = 2


def _usage_exit(message: str) -> None:
    sys.stderr.write(f"crackershop: {message}\n")
    sys.stderr.flush()
    raise SystemExit(USAGE_ERROR)


class Options(settings.Options):
    def __init__(self) -> None:
        super().__init__()
        self.config: Optional[Config] = None
        self.warnings: Sequence[str] = ()
        # the settings given on the command line, to read the rest again on SIGHUP
        self.given: dict[str, str] = {}

    def parseOptions(self, options: Optional[Sequence[str]] = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            _usage_exit(str(e))

    def postOptions(self) -> None:
        self.given = self.given_settings()
        try:
            self.config, self.warnings = from_environment(self.given)
        except ConfigError as e:
            _usage_exit(str(e))


def makeService(options: Options) -> IService:
    from crackershop.store.driver import serving_imports

    serving_imports()
    from twisted.internet import reactor

    from crackershop.metrics import prepare

    config = options.config
    assert config is not None
    for warning in options.warnings:
        reactor.callWhenRunning(log.warn, "{warning}", warning=warning)
    prepare(config.run_dir)
    if clustered(config):
        from crackershop.cluster.master import master_service

        return master_service(reactor, config)
    from crackershop.server.process import single_process

    return single_process(reactor, config, options.given)
