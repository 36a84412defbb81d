"""The worker process: ``python -m crackershop.cluster.worker`` (or the frozen
binary's ``crackershop _worker``), spawned by the master.

This is the one module that joins the cluster to the app. The worker's
service tree is the serving process's (:func:`crackershop.server.process.serving`,
the same as a single-process server's) under the worker's link to its
master::

    InOrder
      Agent                  link to the master: ready, heartbeats, drain
      DatabaseService        the pool on the master's MONGO_URI
      RepairService          the order-repair sweep
      ListeningService       the inherited socket, once the database answers
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, Optional


def main(argv: Optional[Sequence[str]] = None) -> int:
    from crackershop.store.driver import serving_imports

    serving_imports()
    from crackershop.children.childexec import set_parent_death_signal
    from crackershop.cluster.agent import Agent, check_parent, install_signals
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

    from twisted.application.app import startApplication
    from twisted.application.service import Application
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner

    from crackershop.metrics import record_memory
    from crackershop.server.logs import server_observer

    agent = Agent(
        reactor,
        int(os.environ[WORKER_ID_ENV]),
        master_pid,
        int(os.environ.get(FAMILY_ENV, "2")),
        config.graceful_timeout,
        debug_header=not config.production,
        accept_cap=ACCEPT_CAP,
    )
    agent.open_channel()
    # the worker writes its own lines to the server's log file and output
    writer, _ = server_observer(config, reactor, agent.worker_id)
    globalLogBeginner.beginLoggingTo([writer], redirectStandardIO=False)
    install_signals(agent)
    application = Application("crackershop worker")
    worker_service(reactor, config, agent).setServiceParent(application)
    startApplication(application, False)
    reactor.callWhenRunning(record_memory, reactor, agent.worker_id)  # type: ignore[attr-defined]
    reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined,call-arg]
    return agent.exit_code


def worker_service(reactor: Any, config: Any, agent: Any) -> Any:
    """The worker's tree: its agent, then what every serving process runs,
    listening on the inherited socket once the database answers a ping and
    its schema is in place."""
    from twisted.internet.defer import Deferred

    from crackershop.config import mask_uri
    from crackershop.ratelimit import make_limiting
    from crackershop.server.process import serving
    from crackershop.server.root import InOrder
    from crackershop.server.site import make_site

    root = InOrder()
    agent.setServiceParent(root)

    async def ready(store: Any) -> Any:
        try:
            await store.reachable()
        except Exception as e:
            where = mask_uri(config.mongo_uri)
            raise RuntimeError(f"the database at {where} does not answer: {e}") from e
        await process.database.schema_ready()
        limiting = make_limiting(reactor, config, rate_table())
        return agent.watch(make_site(reactor, config, store, limiting))

    process = serving(
        reactor,
        config,
        root,
        agent.endpoint(),
        lambda store: Deferred.fromCoroutine(ready(store)),
        agent.boot_failed,
        agent.listening,
    )
    agent.listener = process.listener
    return root


def rate_table() -> Any:
    """The rate-limit buckets the master shares with its workers, if it does."""
    from crackershop.cluster.link import RATE_TABLE_ENV

    fd = os.environ.get(RATE_TABLE_ENV)
    if not fd:
        return None
    from crackershop.ratelimit.shared import BucketTable

    return BucketTable(int(fd))


if __name__ == "__main__":
    sys.exit(main())
