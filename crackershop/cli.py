"""The ``crackershop`` command.

crackershop serve [options]   the server (same options as twistd crackershop);
                              --reload rolls source changes into the workers
crackershop seed              fill an empty database with a demo catalogue
crackershop config            print the effective configuration, secrets masked
crackershop status [--json]   the running server and its workers
crackershop stop              stop the running server gracefully
crackershop restart [--worker N]  rolling restart of the workers (or one)
crackershop scale N           run N workers
crackershop logs [-n N] [-f] [--worker N] [--level L] [--json]  the server's log
crackershop monit             a live view of status, until Ctrl-C
crackershop install-service [--print] [--user U] [--workdir D] [--env-file F]
                              a systemd unit running the server
crackershop twistd [args]     twistd with the crackershop plugin built in
                              (e.g. crackershop twistd -n crackershop --port 8080)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from crackershop import __version__
from crackershop.config import Config, ConfigError, declarations

EXIT_USAGE = 2


def _server_options() -> Any:
    """twistd's ServerOptions offering crackershop's ServiceMaker directly, so
    it works where plugin discovery does not (a frozen binary)."""
    from twisted.application.service import ServiceMaker
    from twisted.scripts.twistd import ServerOptions  # type: ignore[attr-defined]

    maker = ServiceMaker(
        "crackershop", "crackershop.tap", "The crackershop shop API server", "crackershop"
    )

    class ShopServerOptions(ServerOptions):  # type: ignore[misc]
        def _getPlugins(self, interface: Any, package: Any = None) -> Any:  # type: ignore[override]
            return [maker]

        def postOptions(self) -> None:
            super().postOptions()
            if frozen() and not self["nodaemon"]:
                raise SystemExit(DAEMON_REFUSED)

    return ShopServerOptions


DAEMON_REFUSED = (
    "crackershop: the single-file binary cannot run as a daemon (it unpacks itself "
    "to a temporary folder that must outlive its workers); add -n (--nodaemon) "
    "and let systemd, Docker or Kubernetes keep it in the background"
)


def frozen() -> bool:
    """True in a PyInstaller build."""
    return bool(getattr(sys, "frozen", False))


def serve(argv: Sequence[str]) -> int:
    """Run twistd in this process, in the foreground, with crackershop as its
    only plugin."""
    # `--reload` is a switch here; the setting behind it takes a value.
    args = ["--reload=true" if arg == "--reload" else arg for arg in argv]
    if frozen() and any(a.startswith("--reload") for a in args):
        print("crackershop: --reload watches source files; the binary has none", file=sys.stderr)
        return EXIT_USAGE
    return _run_twistd(["--nodaemon", "--pidfile=", "crackershop", *args])


def twistd_command(argv: Sequence[str]) -> int:
    """``crackershop twistd [twistd options] crackershop [options]``: the
    ``twistd crackershop`` habit, for the binary too."""
    return _run_twistd(list(argv))


def _run_twistd(argv: list[str]) -> int:
    from twisted.application import app
    from twisted.scripts.twistd import runApp  # type: ignore[attr-defined]

    sys.argv = ["crackershop", *argv]
    app.run(runApp, _server_options())
    return 0


def show_config(argv: Sequence[str]) -> int:
    if "--markdown" in argv:
        from crackershop.config import markdown_table

        print(markdown_table(), end="")
        return 0
    from crackershop.config import SECRET_FILE, unset_settings

    options = _options(argv)
    config = options.config
    unset = unset_settings(options.given)
    shown = dict(config.masked(unset))
    if "JWT_SECRET" in unset and not config.production:
        where = os.path.join(config.data_dir, SECRET_FILE)
        shown["JWT_SECRET"] = f"not set (development: the secret kept in {where})"
    width = max(len(decl.env) for _, decl in declarations())
    for env, value in shown.items():
        print(f"{env.ljust(width)}  {value}")
    return 0


def _options(argv: Sequence[str]) -> Any:
    from crackershop.tap import Options

    options = Options()
    options.parseOptions(list(argv))
    assert options.config is not None
    return options


def _config(argv: Sequence[str]) -> Config:
    config: Config = _options(argv).config
    return config


@contextmanager
def _database(config: Config) -> Iterator[Any]:
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


def seed_command(argv: Sequence[str]) -> int:
    from tqdm import tqdm

    from crackershop.ops.seed import is_empty, product_count, seed

    parser = argparse.ArgumentParser(prog="crackershop seed", description="Seed demo data.")
    parser.add_argument(
        "--admin-email", default=os.environ.get("ADMIN_EMAIL", "admin@crackershop.local")
    )
    parser.add_argument("--admin-password", default=os.environ.get("ADMIN_PASSWORD"))
    parser.add_argument(
        "--force",
        action="store_true",
        help="seed a database that already has data (upserts, no duplicates)",
    )
    args, rest = parser.parse_known_args(argv)
    if args.admin_password is not None and len(args.admin_password) < 8:
        print("crackershop: --admin-password must be at least 8 characters", file=sys.stderr)
        return EXIT_USAGE
    config = _config(rest)
    with _database(config) as db:
        if not args.force and not is_empty(db):
            print(
                "crackershop: the database already has products or categories; "
                "use --force to add the demo catalogue anyway (nothing is duplicated)",
                file=sys.stderr,
            )
            return 1
        with tqdm(total=product_count(), unit="product", desc="seeding") as bar:
            done = seed(
                db, args.admin_email.lower(), args.admin_password, config.bcrypt_rounds, bar
            )
    print(f"seeded {done['categories']} categories and {done['products']} products")
    if done["generated_password"]:
        print(f"admin account: {done['admin']} password: {done['generated_password']}")
        print("(shown once; change it after logging in)")
    else:
        print(f"admin account: {done['admin']}")
    return 0


def exec_command(argv: Sequence[str]) -> int:
    """Private: start a child service that dies with its server (frozen builds)."""
    from crackershop.children.childexec import main as exec_main

    return exec_main(argv)


def worker_command(argv: Sequence[str]) -> int:
    """Private: a cluster worker, for builds that cannot run ``python -m``."""
    from crackershop.cluster.worker import main as worker_main

    return worker_main(argv)


def _ops(name: str) -> Any:
    def command(argv: Sequence[str]) -> int:
        from crackershop.ops import commands as opscli

        return int(getattr(opscli, f"{name}_command")(argv))

    return command


COMMANDS = {
    "serve": serve,
    "seed": seed_command,
    "config": show_config,
    "twistd": twistd_command,
    "_worker": worker_command,
    "_exec": exec_command,
    "status": _ops("status"),
    "stop": _ops("stop"),
    "restart": _ops("restart"),
    "scale": _ops("scale"),
    "logs": _ops("logs"),
    "monit": _ops("monit"),
    "install-service": lambda argv: _install_service(argv),
}


def _install_service(argv: Sequence[str]) -> int:
    from crackershop.ops.systemd import install_service_command

    return install_service_command(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if args[0] in ("-V", "--version", "version"):
        print(f"crackershop {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"crackershop: unknown command {args[0]!r}; see crackershop --help", file=sys.stderr)
        return EXIT_USAGE
    try:
        return command(args[1:])
    except ConfigError as e:
        print(f"crackershop: {e}", file=sys.stderr)
        return EXIT_USAGE


def entry() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        code = quiet_broken_pipe()
    sys.exit(code)


def quiet_broken_pipe() -> int:
    """The reader of our output went away (``crackershop logs | head``): stop
    without a traceback, as other command-line tools do (128 + SIGPIPE).
    Standard output is pointed at /dev/null so the interpreter's last flush
    at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141
