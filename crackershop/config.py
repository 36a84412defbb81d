"""Every setting, declared once.

Each field of :class:`Config` carries a :class:`Setting` in its metadata: the
environment variable (plus the old backend's aliases), the command-line flag,
the development and production defaults, the parser that validates a raw
string, and the help text. twistd's options, the environment, the ``.env``
file, ``crackershop config`` and the README's settings table are all derived
from these declarations.

Precedence: command line, then environment, then ``.env``, then defaults.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from twisted.python import usage

ENVIRONMENTS = ("development", "production")
MIN_JWT_SECRET_BYTES = 32


class ConfigError(Exception):
    """A setting has an invalid value; the message names it."""


@dataclass(frozen=True)
class Setting:
    env: str
    help: str
    parse: Callable[[str], Any]
    default: Any
    production: Any = None
    aliases: tuple[str, ...] = ()
    secret: bool = False
    # How a value prints so that it reads back to itself (durations with their unit).
    show: Callable[[Any], str] = str

    def default_for(self, environment: str) -> Any:
        if environment == "production" and self.production is not None:
            return self.production
        return self.default


def setting(
    env: str,
    help: str,
    parse: Callable[[str], Any],
    default: Any,
    production: Any = None,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
    show: Callable[[Any], str] = str,
) -> Any:
    """Declare a Config field backed by a Setting."""
    return field(
        metadata={
            "setting": Setting(
                env=env,
                help=help,
                parse=parse,
                default=default,
                production=production,
                aliases=aliases,
                secret=secret,
                show=show,
            )
        }
    )


# -- parsers: each takes the raw string and returns the value or raises
# ValueError with a message that completes "must be ...".


def parse_str(raw: str) -> str:
    return raw.strip()


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return value

    return parse


def parse_int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return value

    return parse


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("true or false")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(default_unit: str) -> Callable[[str], float]:
    """A duration in seconds; a bare number is in ``default_unit``.

    The old backend used milliseconds for REQUEST_TIMEOUT and the
    ``ms``-style strings (``30d``, ``12h``) for JWT_EXPIRE; both read here.
    """

    def parse(raw: str) -> float:
        match = _DURATION.match(raw)
        if not match:
            raise ValueError("a duration such as 30s, 15m, 12h or 30d")
        amount, unit = match.groups()
        unit = (unit or default_unit).lower()
        # dividing (not multiplying by 0.001) reads "250ms" back as exactly 0.25
        seconds = float(amount) / 1000 if unit == "ms" else float(amount) * _DURATION_UNITS[unit]
        if seconds <= 0:
            raise ValueError("a positive duration")
        return seconds

    return parse


def parse_duration_or_zero(default_unit: str) -> Callable[[str], float]:
    """A duration in seconds where 0 (off) is allowed."""
    positive = parse_duration(default_unit)

    def parse(raw: str) -> float:
        match = _DURATION.match(raw)
        if match and float(match.group(1)) == 0:
            return 0.0
        return positive(raw)

    return parse


_SHOWN_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def show_duration(seconds: float) -> str:
    """A duration with its unit, in the largest unit that says it exactly
    (``30s``, ``30d``, ``250ms``), so that it reads back to the same value."""
    if seconds == 0:
        return "0s"
    for unit, size in _SHOWN_UNITS:
        count = seconds / size
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    millis = seconds * 1000
    text = str(int(millis)) if millis == int(millis) else repr(millis)
    if float(text) / 1000 == seconds:
        return f"{text}ms"
    return f"{seconds!r}s"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(raw: str) -> int:
    match = _SIZE.match(raw)
    if not match:
        raise ValueError("a size such as 512kb or 1mb")
    amount, unit = match.groups()
    size = int(float(amount) * _SIZE_UNITS[(unit or "b").lower()])
    if size <= 0:
        raise ValueError("a positive size")
    return size


def parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_mongo_uri(raw: str) -> str:
    value = raw.strip()
    if value and not value.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError("a mongodb:// or mongodb+srv:// URI")
    return value


def parse_redis_url(raw: str) -> str:
    value = raw.strip()
    if value and not value.startswith(("redis://", "unix://")):
        raise ValueError("a redis://[:password@]host[:port][/db] or unix:///path/redis.sock URL")
    return value


def parse_networks(raw: str) -> tuple[str, ...]:
    """CIDRs (a bare address is its own /32 or /128), normalised."""
    import ipaddress

    networks = []
    for item in parse_list(raw):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"comma separated CIDRs such as 10.0.0.0/8 (not {item!r})") from None
    return tuple(networks)


def parse_workers(raw: str) -> int:
    """``auto`` is -1 (one per core, resolved by the supervisor)."""
    value = raw.strip().lower()
    if value == "auto":
        return -1
    return parse_int(0, 256)(value)


def show_workers(value: int) -> str:
    return "auto" if value == -1 else str(value)


@dataclass(frozen=True)
class Config:
    environment: str = setting(
        "NODE_ENV",
        "development or production; chooses the defaults below",
        parse_choice(*ENVIRONMENTS),
        "development",
    )
    host: str = setting("HOST", "interface to listen on", parse_str, "0.0.0.0")  # noqa: S104
    port: int = setting("PORT", "TCP port to serve HTTP on", parse_int(0, 65535), 5000)
    workers: int = setting(
        "WORKERS",
        "worker processes: auto (one per core), N, or 0 for a single process",
        parse_workers,
        0,
        show=show_workers,
    )
    enable_clustering: bool = setting(
        "ENABLE_CLUSTERING",
        "false forces a single process whatever --workers says",
        parse_bool,
        True,
    )
    mongo_uri: str = setting(
        "MONGO_URI",
        "MongoDB URI; empty starts the embedded database",
        parse_mongo_uri,
        "",
        secret=True,
    )
    mongo_db: str = setting(
        "MONGO_DB",
        "database name when MONGO_URI names none",
        parse_str,
        "crackershop",
    )
    mongo_max_pool_size: int = setting(
        "MONGO_MAX_POOL_SIZE",
        "MongoDB connections each process opens (txmongo's pool_size)",
        parse_int(1, 500),
        10,
        production=50,
    )
    mongo_min_pool_size: int = setting(
        "MONGO_MIN_POOL_SIZE",
        "accepted for compatibility; txmongo opens the whole pool at start",
        parse_int(0, 500),
        5,
        production=20,
    )
    mongo_max_connecting: int = setting(
        "MONGO_MAX_CONNECTING",
        "accepted for compatibility; txmongo connects the pool at start",
        parse_int(1, 500),
        10,
    )
    data_dir: str = setting(
        "DATA_DIR",
        "where the embedded database keeps its files",
        parse_str,
        "./data/db",
    )
    jwt_secret: str = setting(
        "JWT_SECRET",
        f"HS256 signing key, at least {MIN_JWT_SECRET_BYTES} bytes (required in production)",
        parse_str,
        "",
        secret=True,
    )
    jwt_expire: float = setting(
        "JWT_EXPIRE",
        "token lifetime, e.g. 30d or 12h; a token claiming a longer one is refused",
        parse_duration("s"),
        30 * 86400.0,
        show=show_duration,
    )
    bcrypt_rounds: int = setting(
        "BCRYPT_ROUNDS",
        "bcrypt cost factor for new password hashes",
        parse_int(4, 16),
        10,
    )
    allowed_origins: tuple[str, ...] = setting(
        "ALLOWED_ORIGINS",
        "CORS origins, comma separated",
        parse_list,
        ("http://localhost:3000", "http://localhost:19006"),
        production=(),
        aliases=("CORS_ORIGINS",),
    )
    rate_limit_window_ms: int = setting(
        "RATE_LIMIT_WINDOW_MS",
        "rate-limit window in milliseconds",
        parse_int(1000, 86_400_000),
        900_000,
    )
    # Development defaults stay out of the way of the shop's app, which
    # polls notifications every 15 s and reloads lists on every focus (the
    # old backend skipped its global limit in development).
    rate_limit_max_requests: int = setting(
        "RATE_LIMIT_MAX_REQUESTS",
        "requests per client IP per window (global limiter)",
        parse_int(1, 10_000_000),
        10_000,
        production=1000,
    )
    redis_host: str = setting("REDIS_HOST", "Redis host for shared rate limits", parse_str, "")
    redis_port: int = setting("REDIS_PORT", "Redis port", parse_int(1, 65535), 6379)
    rate_limit_write_max: int = setting(
        "RATE_LIMIT_WRITE_MAX",
        "POST/PUT/PATCH/DELETE requests per client IP per window",
        parse_int(1, 10_000_000),
        500,
        production=500,
    )
    rate_limit_auth_max: int = setting(
        "RATE_LIMIT_AUTH_MAX",
        "failed sign-up, login, Google sign-in and password reset or change attempts "
        "per client IP per window",
        parse_int(1, 10_000_000),
        5,
        production=20,
    )
    rate_limit_enabled: bool = setting(
        "RATE_LIMIT_ENABLED",
        "false turns every rate limit off (benchmarks only)",
        parse_bool,
        True,
    )
    redis_url: str = setting(
        "REDIS_URL",
        "shared Redis for rate limits (redis://:password@host:port/db or unix:///path); "
        "overrides REDIS_HOST",
        parse_redis_url,
        "",
        secret=True,
    )
    redis_timeout: float = setting(
        "REDIS_TIMEOUT",
        "deadline for one rate-limit check in Redis before falling back (bare numbers are ms)",
        parse_duration("ms"),
        0.25,
        show=show_duration,
    )
    trusted_proxies: tuple[str, ...] = setting(
        "TRUSTED_PROXIES",
        "CIDRs of proxies whose X-Forwarded-For is believed, comma separated",
        parse_networks,
        (),
    )
    run_dir: str = setting(
        "RUN_DIR",
        "directory for run-time files (the control socket)",
        parse_str,
        "./run",
    )
    log_level: str = setting(
        "LOG_LEVEL",
        "debug, info, warn or error",
        parse_choice("debug", "info", "warn", "error"),
        "info",
    )
    log_dir: str = setting("LOG_DIR", "directory for JSON log files", parse_str, "./logs")
    max_request_size: int = setting(
        "MAX_REQUEST_SIZE",
        "largest request body accepted, e.g. 1mb",
        parse_size,
        1024 * 1024,
    )
    max_upload_size: int = setting(
        "MAX_UPLOAD_SIZE",
        "largest uploaded image, e.g. 5mb",
        parse_size,
        5 * 1024 * 1024,
    )
    max_upload_files: int = setting(
        "MAX_UPLOAD_FILES",
        "most images in one multipart request",
        parse_int(1, 20),
        5,
    )
    request_timeout: float = setting(
        "REQUEST_TIMEOUT",
        "deadline for a database operation, for a request to arrive whole and for "
        "handling it (503 after; bare numbers are milliseconds)",
        parse_duration("ms"),
        30.0,
        show=show_duration,
    )
    mail_outbox: str = setting(
        "MAIL_OUTBOX",
        "directory where outgoing mail (password resets) is written when SMTP_HOST is "
        "not set; empty disables",
        parse_str,
        "./data/outbox",
        production="",
    )
    smtp_host: str = setting(
        "SMTP_HOST",
        "mail relay host; when set, outgoing mail (password resets) is sent through it "
        "instead of MAIL_OUTBOX",
        parse_str,
        "",
    )
    smtp_port: int = setting(
        "SMTP_PORT", "mail relay port (587 for starttls, 465 for tls)", parse_int(1, 65535), 587
    )
    smtp_user: str = setting(
        "SMTP_USER", "login at the mail relay; empty sends without AUTH", parse_str, ""
    )
    smtp_password: str = setting(
        "SMTP_PASSWORD", "password of SMTP_USER", parse_str, "", secret=True
    )
    smtp_from: str = setting(
        "SMTP_FROM",
        "sender of outgoing mail, e.g. CrackerShop <no-reply@shop.example> (needed with SMTP_HOST)",
        parse_str,
        "",
    )
    smtp_tls: str = setting(
        "SMTP_TLS",
        "starttls (upgrade the connection, never send without TLS), tls (TLS from the "
        "first byte, port 465) or off (a relay on this machine only)",
        parse_choice("starttls", "tls", "off"),
        "starttls",
    )
    smtp_ca_file: str = setting(
        "SMTP_CA_FILE",
        "PEM file of the CA certificates the relay's certificate is checked against; "
        "empty uses the system's",
        parse_str,
        "",
    )
    google_client_id: str = setting(
        "GOOGLE_CLIENT_ID",
        "OAuth client id that Google ID tokens must be issued for; empty disables Google sign-in",
        parse_str,
        "",
    )
    google_certs_url: str = setting(
        "GOOGLE_CERTS_URL",
        "where Google's signing keys (JWKS) are fetched from",
        parse_str,
        "https://www.googleapis.com/oauth2/v3/certs",
    )
    public_url: str = setting(
        "PUBLIC_URL",
        "the server's public base URL, used in links",
        parse_str,
        "",
    )
    order_max_lines: int = setting(
        "ORDER_MAX_LINES",
        "most lines (different products) one order may have",
        parse_int(1, 1000),
        50,
    )
    order_repair_after: float = setting(
        "ORDER_REPAIR_AFTER",
        "how long an unfinished order may hold stock before the repair sweep "
        "releases it; the sweep runs this often (bare numbers are seconds)",
        parse_duration("s"),
        60.0,
        show=show_duration,
    )
    catalogue_cache_ttl: float = setting(
        "CATALOGUE_CACHE_TTL",
        "how stale customers' product and category reads may be: each process "
        "keeps what it read this long; 0 reads the database every time "
        "(bare numbers are seconds)",
        parse_duration_or_zero("s"),
        1.0,
        show=show_duration,
    )

    tls_cert: str = setting(
        "TLS_CERT",
        "PEM certificate (chain) file; with TLS_KEY, PORT serves HTTPS (TLS 1.2+); "
        "re-read at every start",
        parse_str,
        "",
    )
    tls_key: str = setting("TLS_KEY", "PEM private key file of TLS_CERT", parse_str, "")
    http_redirect_port: int = setting(
        "HTTP_REDIRECT_PORT",
        "with TLS, a plain-HTTP port that only redirects to HTTPS; 0 disables",
        parse_int(0, 65535),
        0,
    )
    hsts_max_age: int = setting(
        "HSTS_MAX_AGE",
        "Strict-Transport-Security max-age (seconds) on HTTPS responses; 0 disables",
        parse_int(0, 100_000_000),
        0,
        production=31_536_000,
    )
    jwt_leeway: float = setting(
        "JWT_LEEWAY",
        "clock skew allowed when checking a token's iat and exp (bare numbers are seconds)",
        parse_duration("s"),
        30.0,
        show=show_duration,
    )
    auth_cache_ttl: float = setting(
        "AUTH_CACHE_TTL",
        "how long a worker reuses a token's user record; blocking a user or changing "
        "a password reaches other workers within this (0ms disables; bare numbers are ms)",
        parse_duration_or_zero("ms"),
        2.0,
        show=show_duration,
    )
    max_headers: int = setting(
        "MAX_HEADERS",
        "most header lines in one request (more is a 431)",
        parse_int(8, 1000),
        100,
    )
    max_headers_size: int = setting(
        "MAX_HEADERS_SIZE",
        "largest request line plus headers, e.g. 16kb (more is a 431)",
        parse_size,
        16 * 1024,
    )
    reload: bool = setting(
        "RELOAD",
        "development: watch the source and roll new code into the workers (serve --reload)",
        parse_bool,
        False,
    )
    max_memory: int = setting(
        "MAX_MEMORY",
        "a worker whose resident memory exceeds this is recycled gracefully, e.g. 500mb",
        parse_size,
        500 * 1024**2,
    )
    graceful_timeout: float = setting(
        "GRACEFUL_TIMEOUT",
        "how long a stopping worker may finish in-flight requests (bare numbers are seconds)",
        parse_duration("s"),
        5.0,
        show=show_duration,
    )
    log_max_size: int = setting(
        "LOG_MAX_SIZE",
        "size at which the cluster's log file in LOG_DIR is rotated",
        parse_size,
        10 * 1024**2,
    )
    log_max_files: int = setting(
        "LOG_MAX_FILES",
        "rotated log files kept in LOG_DIR",
        parse_int(1, 1000),
        5,
    )

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def masked(self, unset: Collection[str] = ()) -> Mapping[str, str]:
        """Every setting as text, with secrets hidden; a secret named in
        ``unset`` (given nowhere) shows as "not set"."""
        shown = {}
        for name, decl in declarations():
            value = getattr(self, name)
            if decl.secret and (decl.env in unset or value == ""):
                shown[decl.env] = "not set"
            else:
                shown[decl.env] = mask(decl, value)
        return shown


def mask(decl: Setting, value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    text = decl.show(value)
    if not decl.secret or not text:
        return text
    if decl.env in ("MONGO_URI", "REDIS_URL"):
        return mask_uri(text)
    return "********"


def mask_uri(uri: str) -> str:
    """Hide the password (and query secrets) of a connection URI."""
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:********@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
    query = "&".join(
        f"{k}=********" if "password" in k.lower() else f"{k}={v}" if v else k
        for k, v in (p.partition("=")[::2] for p in parts.query.split("&") if p)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def clustered(config: Config) -> bool:
    """A master with workers, or (0, 1, ENABLE_CLUSTERING=false) one process.
    --reload always runs a master, so new code can replace a worker while
    the old one still serves."""
    return config.reload or (config.enable_clustering and config.workers not in (0, 1))


def worker_count(config: Config) -> int:
    """How many processes serve: 1 without a master; ``auto`` is one per CPU
    core this process may run on."""
    if not clustered(config):
        return 1
    if config.workers == -1:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    return max(1, config.workers)


def declarations() -> Sequence[tuple[str, Setting]]:
    return [(f.name, f.metadata["setting"]) for f in fields(Config)]


def markdown_table() -> str:
    """The settings as the README's table (a test keeps the two in step)."""
    rows = ["| environment | option | development | production | what |", "|---|---|---|---|---|"]
    for name, decl in declarations():
        env = decl.env + "".join(f", {alias}" for alias in decl.aliases)
        dev = _shown(decl, decl.default_for("development"))
        prod = _shown(decl, decl.default_for("production"))
        rows.append(f"| `{env}` | `--{flag_name(name)}` | {dev} | {prod} | {decl.help} |")
    return "\n".join(rows) + "\n"


def _shown(decl: Setting, value: Any) -> str:
    text = mask(decl, value) if not decl.secret else ""
    return f"`{text}`" if text else "(empty)"


def flag_name(name: str) -> str:
    return name.replace("_", "-")


def _pick(
    name: str,
    decl: Setting,
    cli: Mapping[str, str],
    sources: Sequence[Mapping[str, Optional[str]]],
) -> Optional[tuple[str, str]]:
    """The raw value and where it came from, by precedence."""
    if cli.get(name) is not None:
        return cli[name], "--" + flag_name(name)
    for source in sources:
        for env in (decl.env, *decl.aliases):
            raw = source.get(env)
            if raw is not None and raw != "":
                return raw, env
    return None


def load(
    cli: Mapping[str, str],
    environ: Mapping[str, str],
    dotenv: Optional[Mapping[str, Optional[str]]] = None,
    make_secret: Callable[[], str] = lambda: secrets.token_urlsafe(48),
    keep_secret: bool = False,
) -> tuple[Config, Sequence[str]]:
    """Build the Config; returns it with warnings to log once started.

    In development without a usable JWT_SECRET, ``keep_secret`` keeps the
    made-up one in DATA_DIR (see :func:`kept_secret`), so tokens survive a
    restart; otherwise it lasts for this run.

    Raises ConfigError naming the setting when a value is invalid.
    """
    sources: Sequence[Mapping[str, Optional[str]]] = (environ, dotenv or {})
    decls = dict(declarations())
    env_pick = _pick("environment", decls["environment"], cli, sources)
    environment = "development"
    if env_pick is not None:
        environment = _parse("environment", decls["environment"], *env_pick)
    values: dict[str, Any] = {}
    given = set()
    for name, decl in decls.items():
        picked = _pick(name, decl, cli, sources)
        if picked is None:
            values[name] = decl.default_for(environment)
        else:
            values[name] = _parse(name, decl, *picked)
            given.add(name)
    warnings = []
    secret = values["jwt_secret"]
    if len(secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
        problem = "is not set" if not secret else f"is shorter than {MIN_JWT_SECRET_BYTES} bytes"
        if environment == "production":
            raise ConfigError(f"JWT_SECRET {problem}; production needs a strong secret")
        kept = kept_secret(values["data_dir"], make_secret) if keep_secret else None
        if kept is not None:
            values["jwt_secret"], path = kept
            warnings.append(
                f"JWT_SECRET {problem}: signing tokens with the development secret kept in "
                f"{path}; production needs JWT_SECRET"
            )
        else:
            values["jwt_secret"] = make_secret()
            warnings.append(
                f"JWT_SECRET {problem}: using a random secret for this run; "
                "tokens will not survive a restart"
            )
    if values["mongo_min_pool_size"] > values["mongo_max_pool_size"]:
        if "mongo_min_pool_size" in given:
            raise ConfigError("MONGO_MIN_POOL_SIZE must not exceed MONGO_MAX_POOL_SIZE")
        values["mongo_min_pool_size"] = values["mongo_max_pool_size"]
    if bool(values["tls_cert"]) != bool(values["tls_key"]):
        raise ConfigError("TLS_CERT and TLS_KEY must be given together")
    if values["http_redirect_port"] and not values["tls_cert"]:
        raise ConfigError("HTTP_REDIRECT_PORT needs TLS_CERT and TLS_KEY")
    if environment == "production" and "*" in values["allowed_origins"]:
        raise ConfigError("ALLOWED_ORIGINS must list exact origins in production, not *")
    if values["smtp_host"] and not values["smtp_from"]:
        raise ConfigError("SMTP_FROM must be set with SMTP_HOST (the sender of outgoing mail)")
    if environment == "production" and not values["smtp_host"] and not values["mail_outbox"]:
        warnings.append(
            "no mail relay is set up (SMTP_HOST): password-reset mails are not sent; "
            "forgot-password still answers as usual"
        )
    return Config(**values), warnings


SECRET_FILE = "jwt-secret"  # noqa: S105 (a file name, not a secret)


def kept_secret(data_dir: str, make: Callable[[], str]) -> Optional[tuple[str, Path]]:
    """The development JWT secret kept in DATA_DIR/jwt-secret, made once
    (mode 0600) and read back on later starts; None if it cannot be kept."""
    path = Path(data_dir) / SECRET_FILE
    for _ in range(2):
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            pass
        except OSError:
            return None
        else:
            if len(text.encode("utf-8")) >= MIN_JWT_SECRET_BYTES:
                return text, path
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # written whole under another name, then linked into place: a
            # process starting at the same moment reads all of it or none
            tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(make() + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: read theirs
            finally:
                os.unlink(tmp)
        except OSError:
            return None
    return None


def unset_settings(cli: Mapping[str, str]) -> set[str]:
    """The environment names of settings given nowhere (command line,
    environment, .env), for ``crackershop config``."""
    sources = (os.environ, read_dotenv(Path.cwd() / ".env"))
    return {decl.env for name, decl in declarations() if _pick(name, decl, cli, sources) is None}


def _parse(name: str, decl: Setting, raw: str, origin: str) -> Any:
    try:
        return decl.parse(raw)
    except ValueError as e:
        shown = "(hidden)" if decl.secret else repr(raw)
        raise ConfigError(f"{origin}={shown} is invalid: must be {e}") from None


def read_dotenv(path: Path) -> Mapping[str, Optional[str]]:
    """The .env file's variables, without touching os.environ."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return dotenv_values(path)


def from_environment(cli: Mapping[str, str]) -> tuple[Config, Sequence[str]]:
    return load(cli, os.environ, read_dotenv(Path.cwd() / ".env"), keep_secret=True)


class Options(usage.Options):
    """Every setting as a command-line option (``--port 8080``), generated
    from the declarations; twistd's options (:mod:`crackershop.tap`) and the
    ``crackershop`` commands both parse them."""

    synopsis = "[options]"
    longdesc = "Serve the crackershop API. Every option can also be set in the environment or .env."
    optParameters = [
        [flag_name(name), None, None, f"{decl.help} [env {decl.env}]"]
        for name, decl in declarations()
    ]

    def given_settings(self) -> dict[str, str]:
        """The settings given on the command line, by name."""
        return {
            name: self[flag_name(name)]
            for name, _ in declarations()
            if self.get(flag_name(name)) is not None
        }


def parse_argv(argv: Sequence[str]) -> dict[str, str]:
    """The settings given in ``argv`` (``--run-dir /x ...``); ConfigError for
    an unknown option or a missing value."""
    options = Options()
    try:
        options.parseOptions(list(argv))
    except usage.UsageError as e:
        raise ConfigError(str(e)) from None
    return options.given_settings()


def from_argv(argv: Sequence[str]) -> Config:
    """The configuration a server started with ``argv`` would have: the
    command line, then the environment, then ``.env``."""
    config, _ = from_environment(parse_argv(argv))
    return config
