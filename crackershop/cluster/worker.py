"""The worker process: ``python -m crackershop.cluster.worker`` (or the frozen
binary's ``crackershop _worker``), spawned by the master.

This is the one module that joins the cluster to the app: it builds the
same database service and site as a single-process server, and hands them
to the cluster's :class:`~crackershop.cluster.agent.Agent`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, Optional


def main(argv: Optional[Sequence[str]] = None) -> int:
    from crackershop.children.childexec import set_parent_death_signal
    from crackershop.cluster.agent import (
        Agent,
        check_parent,
        install_signals,
    )
    from crackershop.cluster.link import (
        FAMILY_ENV,
        MASTER_PID_ENV,
        WORKER_ID_ENV,
        config_from_env,
    )
    from crackershop.cluster.serving import ACCEPT_CAP

    if WORKER_ID_ENV not in os.environ:
        sys.stderr.write("crackershop: this command is started by the server's master process\n")
        return 2
    master_pid = int(os.environ[MASTER_PID_ENV])
    set_parent_death_signal()
    problem = check_parent(master_pid)
    if problem is not None:
        sys.stderr.write(f"crackershop worker: {problem}\n")
        return 1
    config = config_from_env()

    from twisted.internet import reactor
    from twisted.logger import FilteringLogObserver, LogLevelFilterPredicate, globalLogBeginner

    from crackershop.metrics import record_memory
    from crackershop.server.logs import LEVELS

    agent = Agent(
        reactor,
        int(os.environ[WORKER_ID_ENV]),
        master_pid,
        int(os.environ.get(FAMILY_ENV, "2")),
        config.graceful_timeout,
        debug_header=not config.production,
        accept_cap=ACCEPT_CAP,
        wrap=_tls_wrapper(config),
    )
    agent.open_channel()
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[config.log_level])
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(agent.observer(), [predicate])], redirectStandardIO=False
    )
    install_signals(agent)
    reactor.callWhenRunning(agent.boot, lambda: _serving(reactor, config, agent))  # type: ignore[attr-defined]
    reactor.callWhenRunning(record_memory, reactor, agent.worker_id)  # type: ignore[attr-defined]
    reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined,call-arg]
    return agent.exit_code


def _serving(reactor: Any, config: Any, agent: Any) -> Any:
    """The worker's database pool and site, once the database answers."""
    from twisted.internet.defer import Deferred

    from crackershop.config import mask_uri
    from crackershop.orders.placing import RepairService
    from crackershop.ratelimit import make_limiting
    from crackershop.server.runtime import database_service
    from crackershop.server.site import make_site
    from crackershop.tap import start_repair

    database = database_service(reactor, config)
    database.startService()
    reactor.addSystemEventTrigger("before", "shutdown", database.stopService)
    repair = RepairService(reactor, config.order_repair_after)
    repair.startService()
    reactor.addSystemEventTrigger("before", "shutdown", repair.stopService)

    async def ready() -> Any:
        store = start_repair(await database.connect(), repair, reactor, config)
        try:
            await store.ping()
        except Exception as e:
            where = mask_uri(config.mongo_uri)
            raise RuntimeError(f"the database at {where} does not answer: {e}") from e
        limiting = make_limiting(reactor, config)
        # While Redis is away, each worker allows its share of every limit.
        limiting.divide(agent.workers)
        agent.on_workers = limiting.divide
        return make_site(reactor, config, store, limiting)

    return Deferred.fromCoroutine(ready())


def _tls_wrapper(config: Any) -> Any:
    """Serve the adopted socket over TLS when a certificate is configured; the
    files are read here, when the worker starts, so a rolling restart picks
    up renewed ones."""
    if not config.tls_cert:
        return lambda site: site
    from twisted.protocols.tls import TLSMemoryBIOFactory

    from crackershop.server.tls import server_options

    options = server_options(config.tls_cert, config.tls_key)
    return lambda site: TLSMemoryBIOFactory(options, False, site)


if __name__ == "__main__":
    sys.exit(main())
