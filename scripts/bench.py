"""crackershop's benchmark: real servers on 127.0.0.1, driven by wrk.

Run it through ``scripts/bench`` (see ``scripts/bench --help``). It starts
the embedded database (unless MONGO_URI is given), seeds the demo
catalogue, measures a bare Klein "hello" as the reference, then serves
crackershop with one worker (and ``--workers=auto`` when this version has
clustering) and runs every case for a bounded time. It prints a table and
writes the same figures as JSON.

Beside req/s, each case has its CPU time per request (user + system of
every server-side process: the master, the workers, any helper process,
divided by the requests answered) and that in units of bare Klein's in one
process; the targets printed after each run compare those with what the
old backend (Express + Mongoose under Node, one process or PM2 x 2) costs
in the same units, and a cluster's GET /api with one process's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WRK_DIR = ROOT / "scripts" / "wrk"
JWT_SECRET = "benchmark-secret-0123456789abcdef0123456789abcdef"  # noqa: S105 (127.0.0.1 only)
ADMIN = ("bench-admin@crackershop.local", "bench-admin-password")
CUSTOMER = ("bench-customer@crackershop.local", "bench-password-1")
HIGH = "10000000"  # rate limits the benchmark's one client address never reaches
RUN_SERVER = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


@dataclass
class Case:
    name: str
    path: str = "/"
    connections: int = 64
    script: Optional[str] = None
    server: str = "shop"  # which server answers: shop, nolimit, redis or reference


@dataclass
class Result:
    case: str
    connections: int
    requests_per_s: float = 0.0
    p50_ms: Optional[float] = None
    p99_ms: Optional[float] = None
    requests: int = 0
    non_2xx: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rss_mb: list[float] = field(default_factory=list)
    ratio_to_reference: Optional[float] = None
    # user + system CPU of every server-side process, per request answered
    cpu_us: Optional[float] = None
    cpu_ratio_to_reference: Optional[float] = None


CASES = [
    Case("GET /health", "/health"),
    Case("GET /api", "/api"),
    Case("GET /api (rate limits off)", "/api", server="nolimit"),
    Case("GET /api (rate limits in Redis)", "/api", server="redis"),
    Case("GET /api/v1/products", "/api/v1/products?page=1&limit=10"),
    Case("GET /api/v1/products?limit=100", "/api/v1/products?limit=100"),
    Case("GET /api/v1/products/:id", "/", script="products.lua"),
    Case("GET search", "/api/v1/products/search/query?q=rocket"),
    Case("POST /api/v1/auth/login", "/", script="login.lua"),
    Case("mixed shop, 64 connections", "/", 64, "mixed.lua"),
    Case("mixed shop, 256 connections", "/", 256, "mixed.lua"),
    Case("GET /api/v1/products, 1000 connections", "/api/v1/products?page=1&limit=10", 1000),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def raise_open_files(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def http(method: str, url: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310 (127.0.0.1 only)
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Child:
    """A process of ours, its output in a log file, stopped by pid."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT
        )
        # processes outside this one's family that serve with it (a
        # redis-server): their CPU counts as the server's
        self.companions: list[Child] = []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def serving(self) -> list[psutil.Process]:
        """This process and its descendants running Python (the serving
        processes; not a database child)."""
        try:
            me = psutil.Process(self.proc.pid)
            family = [me, *me.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        found = []
        for p in family:
            try:
                name = " ".join(p.cmdline()[:1]).lower()
            except psutil.Error:
                continue
            if "python" in name or "pypy" in name:
                found.append(p)
        return found

    def family(self) -> list[psutil.Process]:
        """This process and every descendant (workers, helper processes),
        and its companions'."""
        try:
            me = psutil.Process(self.proc.pid)
            found = [me, *me.children(recursive=True)]
        except psutil.NoSuchProcess:
            found = []
        for companion in self.companions:
            found.extend(companion.family())
        return found

    def cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) so far of each process of the family, by pid."""
        used = {}
        for p in self.family():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                used[p.pid] = t.user + t.system
        return used

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(url: str, child: Child, timeout: float = 90.0) -> bool:
    """Whether the URL answers 200 before the deadline; False if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str, result: Result) -> None:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    result.requests_per_s = float(rate.group(1)) if rate else 0.0
    total = re.search(r"(\d+) requests in", text)
    result.requests = int(total.group(1)) if total else 0
    for pct, value, unit in LATENCY.findall(text):
        ms = round(float(value) * UNITS[unit], 3)
        if pct == "50":
            result.p50_ms = ms
        else:
            result.p99_ms = ms
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result.non_2xx = int(non.group(1)) if non else 0
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if errors:
        names = ("connect", "read", "write", "timeout")
        result.errors = {n: int(v) for n, v in zip(names, errors.groups()) if int(v)}


def run_wrk(
    base: str, case: Case, duration: float, env: dict[str, str], server: Optional[Child] = None
) -> Result:
    """One case; with ``server``, also the CPU its processes used per request."""
    before = server.cpu() if server is not None else {}
    args = ["wrk", "-t1", f"-c{case.connections}", f"-d{max(1, round(duration))}s", "--latency"]
    args += ["--timeout", "10s"]
    if case.script:
        args += ["-s", str(WRK_DIR / case.script)]
    args.append(base + case.path)
    done = subprocess.run(
        args, env={**os.environ, **env}, capture_output=True, text=True, timeout=duration + 60
    )
    result = Result(case.name, case.connections)
    parse_wrk(done.stdout, result)
    if server is not None and result.requests:
        after = server.cpu()
        # a process that started during the case counts from zero
        used = sum(t - before.get(pid, 0.0) for pid, t in after.items())
        result.cpu_us = round(used * 1e6 / result.requests, 1)
    if done.returncode != 0 or not result.requests:
        result.errors["wrk"] = 1
        sys.stderr.write(done.stdout + done.stderr)
    return result


def rss(child: Child) -> list[float]:
    sizes = []
    for p in child.serving():
        with contextlib.suppress(psutil.Error):
            sizes.append(round(p.memory_info().rss / 2**20, 1))
    return sizes


def interpreter(python: str) -> str:
    code = (
        "import platform, sys; print(platform.python_implementation(), platform.python_version())"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


class Bench:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.python = options.python
        self.work = Path(tempfile.mkdtemp(prefix="crackershop-bench-"))
        self.children: list[Child] = []
        self.mongo_uri = options.mongo_uri
        # bare Klein in one process: the unit of every CPU ratio of the run
        self.unit: Optional[Result] = None

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_", "REDIS_"))}
        child = Child(args, {**base, **env}, self.work / f"{name}.log", self.work)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def close(self) -> None:
        for child in reversed(self.children):
            child.stop()
        if not self.options.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- the database and its data

    def database(self) -> None:
        if self.mongo_uri:
            return
        port = free_port()
        data = self.work / "db"
        data.mkdir()
        db = self.start(
            "secantus",
            [
                str(BIN / "secantusd-py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                str(data),
            ],
            {},
        )
        deadline = time.monotonic() + 60
        while "listening on" not in db.output():
            if db.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the embedded database did not start:\n{db.output()}")
            time.sleep(0.1)
        self.mongo_uri = f"mongodb://127.0.0.1:{port}/crackershop_bench"

    def seed(self) -> None:
        env = {"MONGO_URI": self.mongo_uri, "BCRYPT_ROUNDS": "10", "JWT_SECRET": JWT_SECRET}
        done = subprocess.run(
            [
                str(BIN / "crackershop"),
                "seed",
                "--force",
                "--admin-email",
                ADMIN[0],
                "--admin-password",
                ADMIN[1],
            ],
            env={**os.environ, **env},
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise SystemExit(f"crackershop seed failed:\n{done.stderr}")
        # Enough stock that the mixed workload's orders never run out.
        from pymongo import MongoClient

        with MongoClient(self.mongo_uri) as client:
            db = client.get_default_database("crackershop")  # as MONGO_DB defaults
            db.products.update_many({}, {"$set": {"quantity": 100_000_000}})

    def customer(self, base: str) -> dict[str, str]:
        """The customer the Lua scripts log in and order as, and product ids."""
        http(
            "POST",
            base + "/api/v1/auth/register",
            {"name": "Bench", "email": CUSTOMER[0], "password": CUSTOMER[1]},
        )
        status, login = http(
            "POST", base + "/api/v1/auth/login", {"email": CUSTOMER[0], "password": CUSTOMER[1]}
        )
        if status != 200:
            raise SystemExit(f"cannot log the benchmark customer in: {status} {login}")
        status, page = http("GET", base + "/api/v1/products?limit=100")
        products = page["data"]
        orders = []
        for p in products[:20]:
            price = p.get("discountPrice") or p["price"]
            orders.append(f"{p['_id']}:{max(1, math.ceil(150 / max(price, 1)))}")
        return {
            "BENCH_EMAIL": CUSTOMER[0],
            "BENCH_PASSWORD": CUSTOMER[1],
            "BENCH_TOKEN": login["token"],
            "BENCH_IDS": ",".join(p["_id"] for p in products),
            "BENCH_ORDERS": ",".join(orders),
        }

    # -- servers

    def shop(self, name: str, workers: str, extra: dict[str, str]) -> tuple[Optional[Child], str]:
        port = free_port()
        env = {
            "NODE_ENV": "production",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "MONGO_URI": self.mongo_uri,
            "JWT_SECRET": JWT_SECRET,
            "WORKERS": workers,
            "LOG_LEVEL": "info",
            "RATE_LIMIT_MAX_REQUESTS": HIGH,
            "RATE_LIMIT_WRITE_MAX": HIGH,
            "RATE_LIMIT_AUTH_MAX": HIGH,
            "DATA_DIR": str(self.work / "unused-db"),
            "RUN_DIR": str(self.work / f"run-{name}"),
            "LOG_DIR": str(self.work / "logs"),
            **extra,
        }
        child = self.start(
            name, [self.python, "-c", RUN_SERVER, "-n", "--pidfile=", "crackershop"], env
        )
        base = f"http://127.0.0.1:{port}"
        if not wait_for(base + "/ready", child):
            output = child.output()
            self.stop(child)
            last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
            return None, last[0]
        return child, base

    def shop_with_redis(self, workers: str) -> tuple[Optional[Child], str]:
        """The shop with ``REDIS_URL`` naming a redis-server of its own (the
        several-servers limiter: leased tokens), that server's CPU counted."""
        found = shutil.which("redis-server")
        if found is None:
            return None, "redis-server is not installed (apt-get install redis-server)"
        port = free_port()
        redis = self.start(
            f"redis-{workers}",
            [found, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            {},
        )
        deadline = time.monotonic() + 30
        while not redis_answers(port):
            if redis.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(redis)
                return None, "redis-server did not start"
            time.sleep(0.05)
        child, base = self.shop(
            f"redis-shop-{workers}", workers, {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        )
        if child is None:
            self.stop(redis)
            return None, base
        child.companions.append(redis)
        return child, base

    def reference(self, workers: int) -> tuple[Child, str]:
        port = free_port()
        script = str(ROOT / "scripts" / "klein_hello.py")
        child = self.start(f"klein-{workers}", [self.python, script, str(port), str(workers)], {})
        base = f"http://127.0.0.1:{port}"
        if not wait_for(base + "/", child, 30):
            raise SystemExit(f"the Klein reference did not start:\n{child.output()}")
        return child, base

    def run_workers(self, workers: str) -> dict[str, Any]:
        count = (os.cpu_count() or 1) if workers == "auto" else int(workers)
        shop, base = self.shop(f"shop-{workers}", workers, {})
        if shop is None:
            return {"workers": workers, "available": False, "reason": base}
        nolimit, nolimit_base = self.shop(
            f"nolimit-{workers}", workers, {"RATE_LIMIT_ENABLED": "false"}
        )
        servers = {"shop": (shop, base), "nolimit": (nolimit, nolimit_base)}
        if any(case.server == "redis" for case in self.cases()):
            servers["redis"] = self.shop_with_redis(workers)
        env = self.customer(base)
        duration = self.options.duration
        if self.unit is None and count > 1:
            self.unit = self.measure_reference(1, duration)
            print_row(self.unit, None)
        reference = self.measure_reference(count, duration)
        if self.unit is None:
            self.unit = reference
        if reference is not self.unit and self.unit.cpu_us and reference.cpu_us:
            reference.cpu_ratio_to_reference = round(reference.cpu_us / self.unit.cpu_us, 2)
        print_row(reference, None)
        results = []
        for case in self.cases():
            server, url = servers[case.server]
            if server is None:
                print(f"{case.name}: not measured ({url})")
                continue
            self.warm(url + case.path if not case.script else url + "/api")
            result = run_wrk(url, case, duration, env, server)
            result.rss_mb = rss(server)
            if reference.requests_per_s:
                result.ratio_to_reference = round(
                    result.requests_per_s / reference.requests_per_s, 3
                )
            if self.unit.cpu_us and result.cpu_us:
                result.cpu_ratio_to_reference = round(result.cpu_us / self.unit.cpu_us, 2)
            print_row(result, reference)
            results.append(result)
        pids = [p.pid for p in shop.serving()]
        for child, _ in servers.values():
            if child is not None:
                self.stop(child)
                for companion in child.companions:
                    self.stop(companion)
        return {
            "workers": workers,
            "worker_count": count,
            "available": True,
            "serving_pids": pids,
            "reference": reference.__dict__,
            "unit": self.unit.__dict__,
            "cases": [r.__dict__ for r in results],
        }

    def measure_reference(self, processes: int, duration: float) -> Result:
        """Bare Klein "hello" in this many processes."""
        child, base = self.reference(processes)
        self.warm(base + "/")
        name = "bare Klein hello" + (f", {processes} processes" if processes > 1 else "")
        result = run_wrk(base, Case(name), duration, {}, child)
        result.rss_mb = rss(child)
        self.stop(child)
        return result

    def cases(self) -> list[Case]:
        wanted = self.options.case
        return [c for c in CASES if not wanted or any(w.lower() in c.name.lower() for w in wanted)]

    def warm(self, url: str) -> None:
        """A second of light load so the first figures are not of a cold process."""
        subprocess.run(
            ["wrk", "-t1", "-c8", "-d1s", url], capture_output=True, timeout=30, check=False
        )


def print_header() -> None:
    print(
        f"{'case':42} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'non-2xx':>7} {'errors':>7} {'RSS MB':>14} {'vs Klein':>8} {'CPU us':>7} {'xKlein':>6}"
    )


def print_row(result: Result, reference: Optional[Result]) -> None:
    ratio = f"{result.ratio_to_reference:.0%}" if result.ratio_to_reference is not None else "-"
    errors = sum(result.errors.values())
    memory = "/".join(f"{m:.0f}" for m in result.rss_mb) or "-"
    print(
        f"{result.case[:42]:42} {result.connections:5d} {result.requests_per_s:9.0f} "
        f"{_ms(result.p50_ms):>8} {_ms(result.p99_ms):>8} {result.non_2xx:7d} {errors:7d} "
        f"{memory:>14} {ratio:>8} {_num(result.cpu_us):>7} "
        f"{_num(result.cpu_ratio_to_reference, 2):>6}",
        flush=True,
    )


def _num(value: Optional[float], digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


# the old backend (Express + Mongoose under Node, one process or PM2 x 2) in
# bare-Klein units of CPU per request, measured side by side (issue 17)
OLD_BACKEND = {
    "GET /health": 2.1,
    "GET /api": 2.1,
    "GET /api/v1/products": 51.0,
    "GET /api/v1/products/:id": 16.0,
}
# CPU per request in one process, production defaults, at most this many bare Kleins
ONE_PROCESS = {"GET /health": 1.25, "GET /api": 1.4}


def targets(run: dict[str, Any], single: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
    """The issue's targets, met or missed, for one run (``single``: the
    one-process run of the same benchmark, for what a second worker adds)."""
    if not run["available"]:
        return []
    by = {c["case"]: c for c in run["cases"]}
    found: list[dict[str, Any]] = []

    def add(name: str, value: Optional[float], goal: float, above: bool = True) -> None:
        if value is None:
            return
        met = value >= goal if above else value <= goal
        found.append({"target": name, "value": round(value, 3), "goal": goal, "met": met})

    one_process = run.get("worker_count") == 1
    api = by.get("GET /api")
    if api:
        add("GET /api req/s vs bare Klein", api["ratio_to_reference"], 0.7)
        for name in ("GET /api/v1/products", "GET /api/v1/products/:id"):
            if name in by and api["requests_per_s"]:
                add(
                    f"{name} req/s vs GET /api",
                    by[name]["requests_per_s"] / api["requests_per_s"],
                    0.5,
                )
    if one_process:
        for name, goal in ONE_PROCESS.items():
            if name in by:
                add(
                    f"{name} CPU per request, x bare Klein",
                    by[name]["cpu_ratio_to_reference"],
                    goal,
                    False,
                )
    for name, goal in OLD_BACKEND.items():
        if name in by:
            add(
                f"{name} CPU per request below the old backend's, x bare Klein",
                by[name]["cpu_ratio_to_reference"],
                goal,
                above=False,
            )
    if not one_process and api and single is not None:
        alone = {c["case"]: c for c in single.get("cases", [])}.get("GET /api")
        if alone and alone["cpu_us"] and api["cpu_us"]:
            add(
                "GET /api CPU per request, x one process's",
                api["cpu_us"] / alone["cpu_us"],
                1.1,
                above=False,
            )
    mixed = by.get("mixed shop, 256 connections") or by.get("mixed shop, 64 connections")
    if mixed and mixed["rss_mb"]:
        workers = mixed["rss_mb"][1:] if len(mixed["rss_mb"]) > 1 else mixed["rss_mb"]
        add("RSS MB per serving process after the mixed workload", max(workers), 80, above=False)
    bad = sum(c["non_2xx"] + sum(c["errors"].values()) for c in run["cases"])
    add("errors and non-2xx answers in all cases", bad, 0, above=False)
    return found


def markdown(report: dict[str, Any]) -> str:
    """A results file as the README's table."""
    lines = [
        f"{report['interpreter']}, {report['machine']['cores']} cores, "
        f"load average {report['machine']['load_before'][0]:.2f} before and "
        f"{report['machine']['load_after'][0]:.2f} after, {report['duration_s']:g} s per case, "
        f"`{report['command']}`",
        "",
        "| workers | case | conns | req/s | p50 ms | p99 ms | non-2xx | errors | RSS MB "
        "| req/s vs Klein | CPU µs/req | CPU x Klein |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    targets_seen: list[str] = []
    for run in report["runs"]:
        if not run["available"]:
            lines.append(f"| {run['workers']} | unavailable: {run['reason']} |||||||||||")
            continue
        unit = run.get("unit")
        extra = [unit] if unit and unit["case"] != run["reference"]["case"] else []
        for c in [*extra, run["reference"], *run["cases"]]:
            ratio = c["ratio_to_reference"]
            lines.append(
                f"| {run['workers']} | {c['case']} | {c['connections']} | "
                f"{c['requests_per_s']:.0f} | {_ms(c['p50_ms'])} | {_ms(c['p99_ms'])} | "
                f"{c['non_2xx']} | {sum(c['errors'].values())} | "
                f"{'/'.join(f'{m:.0f}' for m in c['rss_mb'])} | "
                f"{'-' if ratio is None else f'{ratio:.0%}'} | {_num(c.get('cpu_us'))} | "
                f"{_num(c.get('cpu_ratio_to_reference'), 2)} |"
            )
        for t in run.get("targets", []):
            targets_seen.append(
                f"- {run['workers']} worker(s): {t['target']}: {t['value']:g} "
                f"(goal {t['goal']:g}) {'met' if t['met'] else 'MISSED'}"
            )
    return "\n".join(lines + (["", *targets_seen] if targets_seen else []))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per case (8)")
    parser.add_argument("--quick", action="store_true", help="2 s per case")
    parser.add_argument(
        "--python", default=str(BIN / "python"), help="interpreter of the servers (this venv's)"
    )
    parser.add_argument(
        "--workers", default="1,auto", help="worker settings to measure, comma separated (1,auto)"
    )
    parser.add_argument("--case", action="append", help="only cases whose name contains this")
    parser.add_argument(
        "--mongo-uri",
        default=os.environ.get("MONGO_URI", ""),
        help="a SCRATCH database to use instead of the embedded one (default $MONGO_URI): "
        "the benchmark seeds it, registers a customer, places orders and sets every "
        "product's stock to 100,000,000",
    )
    parser.add_argument("--out", help="JSON results (default bench-results/<time>.json)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    parser.add_argument("--markdown", metavar="JSON", help="print a results file as a table")
    options = parser.parse_args(argv)
    if options.markdown:
        print(markdown(json.loads(Path(options.markdown).read_text())))
        return 0
    if options.quick:
        options.duration = 2.0
    found = shutil.which(options.python)
    if found is None:
        print(f"scripts/bench: no interpreter {options.python}", file=sys.stderr)
        return 2
    options.python = str(Path(found).absolute())
    if shutil.which("wrk") is None:
        print("scripts/bench needs wrk: apt-get install wrk", file=sys.stderr)
        return 1
    limit = raise_open_files(4096)
    load_before = os.getloadavg()
    bench = Bench(options)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report: dict[str, Any] = {
        "started": started,
        "machine": {
            "cores": os.cpu_count(),
            "system": platform.platform(),
            "load_before": [round(x, 2) for x in load_before],
            "open_files_limit": limit,
        },
        "interpreter": interpreter(options.python),
        "python": options.python,
        "duration_s": options.duration,
        "command": " ".join(["scripts/bench", *(argv if argv is not None else sys.argv[1:])]),
        "runs": [],
    }
    print(
        f"crackershop benchmark: {report['interpreter']} ({options.python}), "
        f"{os.cpu_count()} cores, load {load_before[0]:.2f}, {options.duration:g} s per case"
    )
    try:
        bench.database()
        bench.seed()
        for workers in options.workers.split(","):
            print(f"\n== workers={workers}")
            print_header()
            run = bench.run_workers(workers.strip())
            single = next((r for r in report["runs"] if r.get("worker_count") == 1), None)
            run["targets"] = targets(run, single)
            for t in run["targets"]:
                print(
                    f"target {t['target']}: {t['value']:g} (goal {t['goal']:g}) "
                    + ("met" if t["met"] else "MISSED")
                )
            if not run["available"]:
                print(
                    f"unavailable: the server does not start with --workers={workers}: "
                    + run["reason"]
                )
            report["runs"].append(run)
    finally:
        bench.close()
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(options.out or ROOT / "bench-results" / f"{started.replace(':', '')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nload average after: {report['machine']['load_after'][0]:.2f}; figures in {out}")
    failures = [
        c["case"]
        for run in report["runs"]
        for c in run.get("cases", [])
        if c["errors"] or c["non_2xx"]
    ]
    if failures:
        print("cases with errors or non-2xx answers: " + "; ".join(failures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
