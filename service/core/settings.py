"""Settings: read from the environment once, validated, and frozen."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from .dkim_key import DkimKey, load_key
from .rates import parse_rate

# The templates shipped with the service; SEQUENCE_FILE names another folder's.
SHIPPED_TEMPLATES = Path(__file__).resolve().parents[2] / "email_templates"
DEFAULT_SEQUENCE_FILE = SHIPPED_TEMPLATES / "sequence.toml"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
SNS_TOPIC_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}")
HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
# Names a DNS rebinding attack cannot make a browser send: always allowed in Host.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
# Peers whose X-Forwarded-* headers count (with TRUSTED_PROXIES): where proxies live.
PRIVATE_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
DATABASE_FILE = "leadmagnet.sqlite3"  # the embedded default's database, in the instance folder
FILES_FOLDER = "files"  # uploaded files (guides) in the instance folder, without STORAGE_URL
# A storage key or an S3 prefix: "/"-separated names of safe characters, none starting with a
# dot (so never "." or ".."), no empty name (so never absolute): never a path a caller chose.
STORAGE_PATH = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,7}"
)
# S3's rules for bucket names: 3-63 lowercase letters, digits, dots and hyphens.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
STORAGE_URL_PARAMETERS = ("endpoint_url", "region")
# A duration as the sequence file writes its delays (content/sequence.py's parse_delay).
DURATION = re.compile(r"^([0-9]+)\s*([smhd]?)$")
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


# Where the app factory keeps the settings it read: settings_of(app) reads them back.
EXTENSION = "leadmagnet.settings"


class SettingsError(SystemExit):
    """A malformed setting: uncaught, it prints one line and exits without a traceback."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"leadmagnet: setting {name} {problem}")


class NoInstance(SystemExit):
    """A command that only uses an instance found none: it must not make a new one (with a
    new secret key and an empty database) in whatever folder it was run from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"leadmagnet: no instance in {path}; run from the folder where you ran serve, "
            "or set INSTANCE_PATH"
        )


@dataclass(frozen=True)
class EmailUrl:
    """Where mail goes: an SMTP server or a folder of .eml files."""

    scheme: str  # "smtp", "smtp+starttls", "smtps" or "file"
    host: str = ""
    port: int = 0
    username: str | None = None
    password: str | None = None
    path: Path | None = None

    @property
    def is_file(self) -> bool:
        return self.scheme == "file"


@dataclass(frozen=True)
class StorageUrl:
    """Where uploaded files are kept: a folder, or a bucket of an S3-compatible store. The
    endpoint, region and keys are None when unset: boto3 then looks for them its own way
    (AWS_DEFAULT_REGION, ~/.aws, an instance role)."""

    scheme: str  # "file" or "s3"
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads, in one place (README's table mirrors this)."""

    instance_path: Path
    secret_keys: tuple[str, ...]
    database_url: str
    redis_url: str | None
    email_url: EmailUrl
    mail_from: str | None
    public_url: str
    sequence_file: Path
    dispatch_interval: float
    ratelimit_enabled: bool
    email_check_deliverability: bool
    double_opt_in: bool
    guide_file: Path | None
    guide_url: str | None
    send_lease: float
    storage_url: StorageUrl
    # The least time between two emails to one person from different magnets' sequences or
    # a broadcast (sending/spacing.py); zero turns the rule off.
    email_min_gap: timedelta = field(default=timedelta(hours=1))
    embedded: bool = field(default=False)
    dkim: DkimKey | None = field(default=None)
    # Bounce and complaint webhooks: each provider is enabled by its key (see webhooks/).
    ses_topic_arn: str | None = None
    ses_sns_cert_file: Path | None = None
    postmark_webhook_token: str | None = None
    mailgun_webhook_signing_key: str | None = None
    sendgrid_webhook_public_key: str | None = None
    # Origins (scheme://host[:port]) whose pages may post to /api/subscribe: the embed form.
    allowed_origins: tuple[str, ...] = ()
    # Operations: proxies in front (hop count), metrics, log lines.
    trusted_proxies: int = 0
    trusted_proxy_addresses: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Host names the app answers to besides PUBLIC_URL's and the loopback names.
    allowed_hosts: tuple[str, ...] = ()
    # Loopback clients may read /outbox without signing in (the newcomer's first hour).
    outbox_open_locally: bool = False
    metrics_token: str | None = None
    metrics_port: int | None = None
    log_format: str = "json"
    # Links in sequence emails go through /r/<token>, which counts the click (README: Clicks).
    track_clicks: bool = True
    # SEQUENCE_FILE was set: that file is the default magnet's truth, not the database.
    sequence_file_managed: bool = False
    # A cap on sends per second across every worker (SEND_RATE); None: no cap.
    send_rate: float | None = None

    @property
    def templates_dir(self) -> Path:
        """Email templates live beside the sequence file that names them."""
        return self.sequence_file.parent

    @property
    def host_names(self) -> tuple[str, ...]:
        """Every name the app answers to in Host (X-Forwarded-Host behind proxies)."""
        public = (urlsplit(self.public_url).hostname or "").lower()
        return tuple(dict.fromkeys((public, *LOOPBACK_HOSTS, *self.allowed_hosts)))

    @property
    def broker_url(self) -> str:
        return self.redis_url or "filesystem://localhost/"

    @property
    def broker_folder(self) -> Path:
        return self.instance_path / "broker"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, create_instance: bool = True
    ) -> Settings:
        """Read and validate every setting; raise SettingsError naming the first bad one.

        Without `create_instance`, an embedded default whose instance folder holds no key or
        no database raises NoInstance instead of making them."""
        env = os.environ if env is None else env
        instance = Path(env.get("INSTANCE_PATH") or "instance").resolve()
        database_raw = _get(env, "DATABASE_URL")
        redis_raw = _get(env, "REDIS_URL")
        embedded = database_raw is None and redis_raw is None
        # Every other setting is judged before the key: a mysql:// URL is the mistake to
        # name, not the SECRET_KEY it made required.
        values: dict[str, Any] = dict(
            instance_path=instance,
            database_url=_database_url(database_raw, instance),
            redis_url=_redis_url(redis_raw),
            email_url=_email_url(_get(env, "EMAIL_URL"), instance),
            mail_from=_mail_from(_get(env, "MAIL_FROM")),
            public_url=_public_url(_get(env, "PUBLIC_URL") or "http://127.0.0.1:5000"),
            sequence_file=_existing_file(
                "SEQUENCE_FILE", _get(env, "SEQUENCE_FILE") or str(DEFAULT_SEQUENCE_FILE)
            ),
            sequence_file_managed=_get(env, "SEQUENCE_FILE") is not None,
            dispatch_interval=_positive_number(env, "DISPATCH_INTERVAL", 30),
            ratelimit_enabled=_boolean(env, "RATELIMIT_ENABLED", True),
            email_check_deliverability=_boolean(env, "EMAIL_CHECK_DELIVERABILITY", False),
            double_opt_in=_boolean(env, "DOUBLE_OPT_IN", False),
            guide_file=_optional_file(env, "GUIDE_FILE"),
            guide_url=_optional_http_url(env, "GUIDE_URL"),
            send_lease=_positive_number(env, "SEND_LEASE", 300),
            email_min_gap=_duration(
                "EMAIL_MIN_GAP", _get(env, "EMAIL_MIN_GAP"), timedelta(hours=1)
            ),
            storage_url=_storage_url(env, instance),
            embedded=embedded,
            dkim=_dkim(env),
            ses_topic_arn=_sns_topic_arn(_get(env, "SES_TOPIC_ARN")),
            ses_sns_cert_file=_certificate_file(_optional_file(env, "SES_SNS_CERT_FILE")),
            postmark_webhook_token=_shared_secret(
                "POSTMARK_WEBHOOK_TOKEN", _get(env, "POSTMARK_WEBHOOK_TOKEN")
            ),
            mailgun_webhook_signing_key=_shared_secret(
                "MAILGUN_WEBHOOK_SIGNING_KEY", _get(env, "MAILGUN_WEBHOOK_SIGNING_KEY")
            ),
            sendgrid_webhook_public_key=_sendgrid_key(_get(env, "SENDGRID_WEBHOOK_PUBLIC_KEY")),
            allowed_origins=_origins(_get(env, "ALLOWED_ORIGINS")),
            trusted_proxies=_hop_count(_get(env, "TRUSTED_PROXIES")),
            trusted_proxy_addresses=_networks(
                _get(env, "TRUSTED_PROXY_ADDRESSES") or PRIVATE_NETWORKS
            ),
            allowed_hosts=_host_names(_get(env, "ALLOWED_HOSTS")),
            outbox_open_locally=_outbox_open_locally(env),
            metrics_token=_shared_secret("METRICS_TOKEN", _get(env, "METRICS_TOKEN")),
            metrics_port=_port("METRICS_PORT", _get(env, "METRICS_PORT")),
            log_format=_log_format(_get(env, "LOG_FORMAT")),
            track_clicks=_boolean(env, "TRACK_CLICKS", True),
            send_rate=_send_rate(_get(env, "SEND_RATE")),
        )
        secret_keys = _secret_keys(env, instance, embedded, create_instance)
        if database_raw is None and not create_instance:
            _existing_instance_file(instance / DATABASE_FILE)
        return cls(secret_keys=secret_keys, **values)


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
# Keys printed where anyone reads them: what .env.example used to ship, README's examples.
PUBLISHED_KEYS = {
    "change-me-to-a-long-random-string",
    "q7mX2Lr9-Vt4Kc8Zp1Hs6Wn3Jb5Yd0Fg_Ea2Uo7Ri4Tl9Nx6Mz1Cq8Pw3Sv5Bk",
    "Xh4Tz9Qw2Lm7Rc1Vp6Jn8Kd3Fs5Ya0Gb_Eu2Ot9Ri4Wl7Nx6Mz1Cq8Pw3Sv5Hk",
}


def _secret_keys(
    env: Mapping[str, str], instance: Path, embedded: bool, create: bool
) -> tuple[str, ...]:
    raw = _get(env, "SECRET_KEY")
    if raw is None:
        if not embedded:
            raise SettingsError(
                "SECRET_KEY",
                f"is required when DATABASE_URL or REDIS_URL is set; make one: {MAKE_A_KEY}",
            )
        return (_instance_secret(instance, create),)
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for position, key in enumerate(keys, start=1):
        # Old keys too: links signed with any of them are accepted, so a weak one forges.
        problem = _weak_key(key)
        if problem and position > 1:
            problem += f" (key {position} in the list: old keys still verify links)"
        if problem:
            raise SettingsError("SECRET_KEY", f"{problem}; make one: {MAKE_A_KEY}")
    return keys


def _weak_key(key: str) -> str | None:
    """Why a key could be guessed, or None: whoever has it forges every link."""
    if key in PUBLISHED_KEYS:
        return "is an example published with leadmagnet, which anyone can read"
    if "change-me" in key.lower():
        return "is a placeholder (it holds 'change-me'), not a secret"
    if len(key) < 32:
        return f"must be at least 32 characters, not {len(key)}"
    if len(set(key)) < 10:
        return f"must hold at least 10 different characters, not {len(set(key))}"
    return None


def _instance_secret(instance: Path, create: bool) -> str:
    """The embedded default's key: generated once, kept beside the database."""
    path = instance / "secret_key"
    if not create:
        _existing_instance_file(path)
    if path.exists():
        key = path.read_text().strip()
        problem = _weak_key(key) if key else "is empty"
        if problem:
            raise SettingsError(
                "SECRET_KEY",
                f"is unset and the key in {path} {problem}: put the old key back in the file, "
                "or delete the file to have a strong one made (links in emails sent before "
                "then stop working)",
            )
        return key
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _existing_instance_file(path: Path) -> None:
    if not path.exists():
        raise NoInstance(path.parent)


def _database_url(raw: str | None, instance: Path) -> str:
    if raw is None:
        return f"sqlite:///{instance / DATABASE_FILE}"
    try:
        url = make_url(raw)
    except ArgumentError:
        raise SettingsError("DATABASE_URL", f"is not a database URL: {raw!r}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return raw
    if backend in ("postgresql", "postgres"):
        if not url.host and not url.query.get("host"):
            raise SettingsError("DATABASE_URL", "names no PostgreSQL host")
        if not url.database and not url.query.get("dbname"):
            # libpq would pick the user's name, or the server's own `postgres` database.
            raise SettingsError(
                "DATABASE_URL",
                "names no database: end it with one, as in postgresql://user@host:5432/leadmagnet",
            )
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise SettingsError("DATABASE_URL", f"must be sqlite:/// or postgresql://, not {backend}://")


def _send_rate(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return parse_rate(raw)
    except ValueError as exc:
        raise SettingsError("SEND_RATE", str(exc)) from None


def _redis_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise SettingsError("REDIS_URL", f"must look like redis://host:6379/0, not {raw!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingsError("REDIS_URL", "has a bad port") from None
    return raw


def _email_url(raw: str | None, instance: Path) -> EmailUrl:
    if raw is None:
        return EmailUrl(scheme="file", path=instance / "outbox")
    parts = urlsplit(raw)
    if parts.scheme == "file":
        if not parts.path:
            raise SettingsError(
                "EMAIL_URL", "file:// needs a folder, as in file:///var/mail/outbox"
            )
        return EmailUrl(scheme="file", path=Path(unquote(parts.path)))
    if parts.scheme not in ("smtp", "smtp+starttls", "smtps"):
        raise SettingsError(
            "EMAIL_URL", "must start with smtp://, smtp+starttls://, smtps:// or file://"
        )
    try:
        port = parts.port
    except ValueError:
        raise SettingsError("EMAIL_URL", "has a bad port") from None
    if not parts.hostname:
        raise SettingsError("EMAIL_URL", "names no SMTP host")
    default_port = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}[parts.scheme]
    return EmailUrl(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or default_port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _mail_from(raw: str | None) -> str | None:
    if raw is None:
        return None
    address = parseaddr(raw)[1]
    if "@" not in address or any(c in raw for c in "\r\n"):
        raise SettingsError(
            "MAIL_FROM", f"must look like 'Name <address@example.com>', not {raw!r}"
        )
    return raw


def _public_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            "PUBLIC_URL", f"must be an http(s) URL like https://example.com, not {raw!r}"
        )
    return raw.rstrip("/")


def _origins(raw: str | None) -> tuple[str, ...]:
    """Comma-separated web origins, each exactly as a browser sends it in `Origin`."""
    if raw is None:
        return ()
    origins = []
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        parts = urlsplit(item)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or port == -1
            or parts.username is not None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise SettingsError(
                "ALLOWED_ORIGINS",
                f"holds {item!r}, which is not an origin like https://blog.example.com",
            )
        # A browser leaves the scheme's own port out of Origin: so must the comparison.
        default = {"http": 80, "https": 443}[parts.scheme]
        host = parts.netloc.lower().rsplit(":", 1)[0] if port == default else parts.netloc.lower()
        origins.append(f"{parts.scheme}://{host}")
    return tuple(dict.fromkeys(origins))


def _optional_http_url(env: Mapping[str, str], name: str) -> str | None:
    raw = _get(env, name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(name, f"must be an http(s) URL, not {raw!r}")
    return raw


def _storage_url(env: Mapping[str, str], instance: Path) -> StorageUrl:
    """Only the shape is judged here: the start never waits for the store (/readyz asks it)."""
    raw = _get(env, "STORAGE_URL")
    if raw is None:
        return StorageUrl(scheme="file", path=instance / FILES_FOLDER)
    parts = urlsplit(raw)
    if parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
        return StorageUrl(scheme="file", path=Path(unquote(parts.path)))
    if parts.scheme != "s3":
        raise SettingsError(
            "STORAGE_URL",
            f"must be s3://bucket[/prefix] or file:///folder (a full path), not {parts.scheme}:",
        )
    if "@" in parts.netloc:
        raise SettingsError(
            "STORAGE_URL", "must not hold keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if not BUCKET_NAME.fullmatch(parts.netloc):
        raise SettingsError(
            "STORAGE_URL", f"names no valid bucket (3-63 of a-z 0-9 . -): {parts.netloc!r}"
        )
    prefix = parts.path.strip("/")
    if prefix and not STORAGE_PATH.fullmatch(prefix):
        raise SettingsError(
            "STORAGE_URL", f"has a prefix of other characters than A-Z a-z 0-9 . _ -: {prefix!r}"
        )
    query = _storage_url_query(parts.query)
    key_id, secret = _aws_keys(env)
    return StorageUrl(
        scheme="s3",
        bucket=parts.netloc,
        prefix=prefix,
        endpoint_url=_endpoint_url(query, env),
        region=_region(query, env),
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=_get(env, "AWS_SESSION_TOKEN"),
    )


def _storage_url_query(query: str) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    for name in names:
        if name not in STORAGE_URL_PARAMETERS or names.count(name) > 1:
            raise SettingsError(
                "STORAGE_URL",
                f"takes endpoint_url= and region= once each after ?, not {name!r}",
            )
    return {name: value.strip() for name, value in pairs}


def _endpoint_url(query: dict[str, str], env: Mapping[str, str]) -> str | None:
    """The URL's ?endpoint_url= wins over AWS_ENDPOINT_URL: it is this store's own."""
    name, raw = "STORAGE_URL", query.get("endpoint_url")
    if raw is None:
        name, raw = "AWS_ENDPOINT_URL", _get(env, "AWS_ENDPOINT_URL")
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(name, f"needs an http(s) endpoint like http://minio:9000, not {raw!r}")
    return raw


def _region(query: dict[str, str], env: Mapping[str, str]) -> str | None:
    name, raw = "STORAGE_URL", query.get("region")
    if raw is None:
        name, raw = "AWS_REGION", _get(env, "AWS_REGION")
    if raw is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", raw):
        raise SettingsError(name, f"needs a region like eu-west-1, not {raw!r}")
    return raw


def _aws_keys(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Both keys or neither: with one alone, boto3 would sign with whatever else it finds."""
    key_id, secret = _get(env, "AWS_ACCESS_KEY_ID"), _get(env, "AWS_SECRET_ACCESS_KEY")
    if (key_id is None) != (secret is None):
        missing = "AWS_SECRET_ACCESS_KEY" if secret is None else "AWS_ACCESS_KEY_ID"
        given = "AWS_ACCESS_KEY_ID" if secret is None else "AWS_SECRET_ACCESS_KEY"
        raise SettingsError(missing, f"is required when {given} is set")
    return key_id, secret


def _existing_file(name: str, raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise SettingsError(name, f"names no readable file: {raw}")
    return path.resolve()


def _optional_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = _get(env, name)
    return None if raw is None else _existing_file(name, raw)


def _positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, f"must be a number of seconds, not {raw!r}") from None
    if not value > 0:
        raise SettingsError(name, "must be greater than 0")
    return value


def _duration(name: str, raw: str | None, default: timedelta) -> timedelta:
    """A duration written as the sequence's delays are: `0`, `45s`, `10m`, `2h`, `3d`."""
    if raw is None:
        return default
    match = DURATION.match(raw)
    if not match:
        raise SettingsError(name, f"must be a duration like 0, 45s, 10m, 2h or 3d, not {raw!r}")
    return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])


def _dkim(env: Mapping[str, str]) -> DkimKey | None:
    """All three DKIM settings, or none: a half-configured signer would send unsigned mail."""
    values = {
        "DKIM_DOMAIN": _get(env, "DKIM_DOMAIN"),
        "DKIM_SELECTOR": _get(env, "DKIM_SELECTOR"),
        "DKIM_PRIVATE_KEY": _get(env, "DKIM_PRIVATE_KEY"),
    }
    missing = [name for name, value in values.items() if value is None]
    if len(missing) == len(values):
        return None
    if missing:
        given = " and ".join(name for name in values if name not in missing)
        raise SettingsError(missing[0], f"is required when {given} is set (DKIM needs all three)")
    domain, selector, key = (value or "" for value in values.values())  # all three are set
    try:
        return load_key(domain, selector, key)
    except ValueError as exc:
        name, _, problem = str(exc).partition(" ")
        raise SettingsError(name, problem) from None


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingsError(name, f"must be true or false, not {raw!r}")


def _sns_topic_arn(raw: str | None) -> str | None:
    if raw is not None and not SNS_TOPIC_ARN.fullmatch(raw):
        raise SettingsError(
            "SES_TOPIC_ARN", f"must look like arn:aws:sns:us-east-1:123456789012:name, not {raw!r}"
        )
    return raw


def _certificate_file(path: Path | None) -> Path | None:
    if path is None:
        return None
    from cryptography import x509  # only where the setting is used

    try:
        x509.load_pem_x509_certificate(path.read_bytes())
    except (ValueError, OSError):
        raise SettingsError("SES_SNS_CERT_FILE", f"holds no PEM certificate: {path}") from None
    return path


def _shared_secret(name: str, raw: str | None) -> str | None:
    """A secret that a caller presents (webhook token, metrics bearer token)."""
    if raw is not None and (len(raw) < 16 or any(c.isspace() for c in raw)):
        raise SettingsError(name, "must be at least 16 characters, without spaces")
    return raw


def _hop_count(raw: str | None) -> int:
    """How many proxies in front append to X-Forwarded-*: trusting more hops than there
    are would let a client choose its own address."""
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise SettingsError(
            "TRUSTED_PROXIES", f"must be a number of proxies (0, 1, 2, ...), not {raw!r}"
        )
    return value


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                "TRUSTED_PROXY_ADDRESSES",
                f"holds {item!r}, which is not an address or network like 10.0.0.0/8",
            ) from None
    return tuple(networks)


def _host_names(raw: str | None) -> tuple[str, ...]:
    """Comma-separated bare host names (an internal service name, a scraper's target)."""
    names = [part.strip().lower() for part in (raw or "").split(",") if part.strip()]
    for name in names:
        if not HOST_NAME.fullmatch(name):
            raise SettingsError(
                "ALLOWED_HOSTS",
                f"holds {name!r}, which is not a host name like web or metrics.internal "
                "(no scheme, no port)",
            )
    return tuple(names)


def _outbox_open_locally(env: Mapping[str, str]) -> bool:
    wanted = _boolean(env, "OUTBOX_OPEN_LOCALLY", False)
    if wanted and _hop_count(_get(env, "TRUSTED_PROXIES")):
        raise SettingsError(
            "OUTBOX_OPEN_LOCALLY",
            "cannot be true with TRUSTED_PROXIES: behind a proxy every visitor may look local",
        )
    return wanted


def _port(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise SettingsError(name, f"must be a TCP port from 1 to 65535, not {raw!r}")
    return value


def _log_format(raw: str | None) -> str:
    word = (raw or "json").lower()
    if word not in ("json", "text"):
        raise SettingsError("LOG_FORMAT", f"must be json or text, not {raw!r}")
    return word


def sendgrid_public_key(raw: str) -> EllipticCurvePublicKey:
    """SendGrid's verification key as an EC public key: base64 DER (as the dashboard shows
    it) or PEM. Raises ValueError for anything else."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    if raw.lstrip().startswith("-----BEGIN"):
        key = load_pem_public_key(raw.encode())
    else:
        try:
            der = base64.b64decode("".join(raw.split()), validate=True)
        except binascii.Error:
            raise ValueError("not base64") from None
        key = load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not a P-256 public key")
    return key


def _sendgrid_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        sendgrid_public_key(raw)
    except (ValueError, TypeError):
        raise SettingsError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY", "must be SendGrid's P-256 public key (base64 or PEM)"
        ) from None
    return raw


def install(app: Flask, settings: Settings) -> None:
    """Keep the settings on the app the factory built (read once, there)."""
    app.extensions[EXTENSION] = settings


def settings_of(app: Flask) -> Settings:
    """The settings the app was built with."""
    settings: Settings = app.extensions[EXTENSION]
    return settings
