"""A pymongo database for a one-off command (``crackershop seed``): on
MONGO_URI, on the running server's embedded database (whose address it
publishes in DATA_DIR.uri), or on an embedded database started for the
duration of the command."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crackershop.config import Config


@contextmanager
def database(config: Config) -> Iterator[Any]:
    """A pymongo database: MONGO_URI, the running server's embedded database,
    or an embedded database started for the duration of the command."""
    import pymongo

    from crackershop.children.embedded import find_secantusd, free_port, uri_file
    from crackershop.store.mongo import database_name

    if config.mongo_uri:
        client: Any = pymongo.MongoClient(config.mongo_uri, serverSelectionTimeoutMS=10000)
        yield client[database_name(config.mongo_uri, config.mongo_db)]
        client.close()
        return
    published = uri_file(Path(config.data_dir))
    if published.is_file():
        uri = published.read_text().strip()
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
        try:
            client.admin.command("ping")
        except pymongo.errors.PyMongoError:
            client.close()
        else:
            yield client[config.mongo_db]
            client.close()
            return
    executable = find_secantusd()
    if executable is None:
        raise SystemExit("crackershop: the embedded database is not installed; set MONGO_URI")
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    port = free_port()
    child = subprocess.Popen(  # noqa: S603 (our own executable, fixed arguments)
        [
            executable,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            config.data_dir,
            "--log-level",
            "WARNING",
        ],
    )
    try:
        # ready when it answers a ping (server selection waits for that)
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=60000)
        try:
            client.admin.command("ping")
        except pymongo.errors.PyMongoError:
            raise SystemExit("crackershop: the embedded database did not start") from None
        yield client[config.mongo_db]
        client.close()
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
