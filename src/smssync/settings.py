"""One frozen Settings for the server and the CLI, from flags and ``SMSSYNC_*`` variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from smssync.egress import Egress
from smssync.errors import ConfigError

DEFAULT_DATA_DIR = "smssync-data"
DEFAULT_PORT = 8080


class Secret(str):
    """A string that prints masked, so that settings can be logged safely."""

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the server needs, built once and passed explicitly."""

    #: Folder of the SQLite database (ignored when ``database_url`` is set).
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    #: ``postgresql://…`` or ``sqlite:///…``; empty means SQLite in ``data_dir``.
    database_url: str = ""
    #: How phones reach this server, used to print Sync URLs.
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    #: Region for numbers written without a country code (ISO 3166 alpha-2).
    default_region: str = "KE"
    #: Path under which the SMSsync endpoint lives.
    sync_path: str = "/smssync"
    #: E6: a message reported sent and listed this many times without a delivery report
    #: becomes ``delivery_unknown`` (S-31); 0: no limit by count, only by time.
    result_max_listings: int = 0
    #: E6: hours after leaving the queue until a sent message without a delivery report
    #: becomes ``delivery_unknown`` and an accepted or handed-off one is no longer listed.
    result_max_age_h: int = 48
    #: Webhooks: first retry after this many milliseconds, doubling up to an hour.
    webhook_retry_ms: int = 5000
    #: Webhooks: a delivery still failing this long after its event is dead-lettered.
    webhook_max_age_s: int = 86400
    #: Webhooks: how long a receiver may take to answer.
    webhook_timeout_s: int = 10
    #: How often device liveness is checked for device.online/offline events.
    liveness_check_s: int = 5
    #: Alert once on a message still ``accepted`` this many hours after its device accepted
    #: it, since the App never reports a send whose E5 reply it lost (S-30); 0: never.
    accepted_alert_h: int = 24
    #: The key behind every credential hash, hex (32 bytes or more); empty: the key file
    #: ``server.key`` in ``data_dir``, created on first start. Environment only: a flag
    #: would show it to every user of ``ps``. Every server of one database needs the same.
    server_key: str = ""
    #: Failed authentications allowed at once per source address and per target (device,
    #: Basic user, API key) before 429; 0 turns the brake off (server/throttle.py).
    auth_failures_burst: int = 20
    #: Failed authentications given back per minute to each address and target.
    auth_failures_per_min: int = 10
    #: Webhooks and status callbacks: CIDRs and host names they may reach although not
    #: public (loopback, private, link-local, ...), comma-separated (server/egress.py).
    webhook_allow: str = ""
    #: Request line and headers of one request together, in bytes; more is answered 431.
    max_header_bytes: int = 32 * 1024
    #: Header fields of one request; more is answered 431.
    max_headers: int = 100
    #: Seconds from a request's first byte (or its connection's) to its last; then 408.
    request_timeout_s: int = 30
    #: Largest body of an API request, in bytes; more is answered 413.
    api_max_body_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        # From the environment it arrives as a plain str; it must still print masked.
        object.__setattr__(self, "server_key", Secret(self.server_key))

    @property
    def store_url(self) -> str:
        """Return the database URL, SQLite in the data folder by default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'smssync.db'}"

    @property
    def base_url(self) -> str:
        """Return the public base URL without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def sync_url(self) -> str:
        """Return the shared Sync URL (devices identified by secret or Basic auth)."""
        return self.base_url + self.sync_path

    def device_url(self, token: str) -> str:
        """Return a device's own Sync URL for its path token."""
        return f"{self.sync_url}/d/{token}"

    def to_env(self) -> dict[str, str]:
        """Return the ``SMSSYNC_*`` variables that rebuild these settings in a worker."""
        env = {}
        for field in dataclasses.fields(self):
            env[f"SMSSYNC_{field.name.upper()}"] = str(getattr(self, field.name))
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build from ``SMSSYNC_*`` variables, then explicit overrides; name a bad variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            name = f"SMSSYNC_{field.name.upper()}"
            if name not in environ:
                continue
            raw = environ[name]
            try:
                if field.type in ("int", int):
                    values[field.name] = int(raw)
                elif field.type in ("Path", Path):
                    values[field.name] = Path(raw)
                else:
                    values[field.name] = raw
            except ValueError:
                raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ConfigError naming the first impossible value."""
        if not 0 < self.port < 65536:
            raise ConfigError(f"port: {self.port} is not a TCP port")
        for name in ("webhook_retry_ms", "webhook_max_age_s", "webhook_timeout_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.liveness_check_s < 1:
            raise ConfigError("liveness_check_s: must be at least 1")
        if self.accepted_alert_h < 0:
            raise ConfigError("accepted_alert_h: must be 0 (no alerts) or more")
        if self.auth_failures_burst < 0 or self.auth_failures_per_min < 0:
            raise ConfigError("auth_failures_burst, auth_failures_per_min: must be 0 or more")
        try:
            Egress.parse(self.webhook_allow)
        except ValueError as exc:
            raise ConfigError(f"webhook_allow: {exc}") from None
        for name in ("max_header_bytes", "max_headers", "request_timeout_s", "api_max_body_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.workers < 1:
            raise ConfigError("workers: must be at least 1")
        if not self.sync_path.startswith("/") or self.sync_path.endswith("/"):
            raise ConfigError("sync_path: must start with / and not end with /")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("public_url: must start with http:// or https://")
