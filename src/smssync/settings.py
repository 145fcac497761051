"""One frozen Settings for the server and the CLI, from flags and ``SMSSYNC_*`` variables.

Each field is one setting: its variable is ``SMSSYNC_<NAME>`` (pydantic-settings reads it),
its flag ``--<name>`` (``cli/options.py`` derives the click option from the field: type,
range, default and the description as help). ``docs/configuration.md`` lists them all, and
``tests/unit/test_docs.py`` compares that table to these fields.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smssync import reach, regions
from smssync.egress import Egress
from smssync.errors import ConfigError

ENV_PREFIX = "SMSSYNC_"
#: Settings whose values are secrets: masked when printed, never quoted in an error.
SECRETS = frozenset({"server_key", "metrics_token"})


class Flag(enum.Enum):
    """Which commands take a setting as a flag; every setting also reads its variable."""

    #: Every command that opens the store: where the store is, and how Sync URLs print.
    STORE = "store"
    #: ``smssync serve`` only (the default for a field without a mark).
    SERVE = "serve"
    #: No flag: its value would show in ``ps`` to every user of the machine.
    NONE = "none"


class Secret(str):
    """A string that prints masked, so that settings can be logged safely."""

    def __repr__(self) -> str:
        return "Secret('**********')"


class Settings(BaseSettings):
    """Everything the server needs, built once and passed explicitly."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    data_dir: Annotated[Path, Flag.STORE] = Field(
        default=Path("smssync-data"),
        description="Folder of the SQLite database (unused when --database-url is set).",
    )
    database_url: Annotated[str, Flag.STORE] = Field(
        default="", description="postgresql://… to use PostgreSQL instead of SQLite."
    )
    public_url: Annotated[str, Flag.STORE] = Field(
        default="",
        description="How phones reach this server, e.g. https://sms.example.org (default: the"
        " address served on, the LAN address for 0.0.0.0).",
    )
    default_region: Annotated[str, Flag.STORE] = Field(
        default="",
        description="Country of numbers written without +country code (ISO 3166 alpha-2,"
        " e.g. GB); empty: the one the store keeps, set at first run from the locale.",
    )
    host: Annotated[str, Flag.STORE] = Field(
        default="127.0.0.1", description="Address to listen on."
    )
    port: Annotated[int, Flag.STORE] = Field(
        default=8080, ge=1, le=65535, description="Port to listen on."
    )
    sync_path: Annotated[str, Flag.STORE] = Field(
        default="/smssync", description="Path of the Sync URL; devices get PATH/d/TOKEN."
    )
    workers: int = Field(default=1, ge=1, description="Server processes.")
    result_max_listings: int = Field(
        default=0,
        description="Listings by task=result of a sent SMS without a delivery report before"
        " it becomes delivery_unknown (0: no limit by count).",
    )
    result_max_age_h: int = Field(
        default=48,
        description="Hours after leaving the queue until a sent SMS without a delivery"
        " report becomes delivery_unknown, and an accepted one is no longer listed.",
    )
    webhook_retry_ms: int = Field(
        default=5000,
        ge=1,
        description="First webhook retry after this many ms, doubling up to an hour.",
    )
    webhook_max_age_s: int = Field(
        default=86400, ge=1, description="Seconds after its event a failing webhook delivery dies."
    )
    webhook_timeout_s: int = Field(
        default=10, ge=1, description="Seconds a webhook receiver may take to answer."
    )
    webhook_allow: str = Field(
        default="",
        description="Non-public CIDRs and host names webhooks and status callbacks may reach,"
        " comma-separated.",
    )
    liveness_check_s: int = Field(
        default=5, ge=1, description="Seconds between checks of device liveness (online/offline)."
    )
    # The App never reports a send whose E5 reply it lost (S-30), hence an alert by age.
    accepted_alert_h: int = Field(
        default=24,
        ge=0,
        description="Hours an SMS may stay accepted without a result before an alert (0: none).",
    )
    alert_send_failures: int = Field(
        default=3,
        ge=0,
        description="Sends of one phone reported failed in a row that raise an alert (0: none).",
    )
    alert_webhook_failures: int = Field(
        default=3,
        ge=0,
        description="Failed attempts in a row of one webhook delivery that raise an alert"
        " (0: none).",
    )
    # Every server of one database needs the same key (it is behind every credential hash).
    server_key: Annotated[str, Flag.NONE] = Field(
        default="",
        description="The key behind every credential hash, hex (32 bytes or more); empty:"
        " the file server.key in the data folder, created on first start.",
    )
    auth_failures_burst: int = Field(
        default=20,
        ge=0,
        description="Failed authentications per address and per target before 429 (0: no brake).",
    )
    auth_failures_per_min: int = Field(
        default=10,
        ge=0,
        description="Failed authentications given back per minute to each address and target.",
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1,
        description="Largest request line and headers of a request, in bytes (more: 431).",
    )
    max_headers: int = Field(
        default=100, ge=1, description="Most header fields in a request (more: 431)."
    )
    request_timeout_s: int = Field(
        default=30, ge=1, description="Seconds a request may take to arrive whole (then: 408)."
    )
    api_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Largest body of an API request, in bytes (more: 413).",
    )
    # Believed from anyone, X-Forwarded-For would let a guesser pick a fresh address (and so
    # a fresh brake) for every request: only the proxies named here are trusted.
    forwarded_allow_ips: str = Field(
        default="",
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed:"
        " IP addresses and CIDRs, comma-separated (empty: none; * trusts every client).",
    )

    retention_days: int = Field(
        default=0,
        ge=0,
        description="Days after which the text of stored SMS is purged, keeping the messages,"
        " their numbers, times and statuses (0: kept forever).",
    )

    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text (time level logger: message) or one JSON object each.",
    )
    metrics_token: Annotated[str, Flag.NONE] = Field(
        default="",
        description="Bearer token that GET /metrics requires (empty: /metrics is open).",
    )

    @field_validator("server_key", "metrics_token")
    @classmethod
    def _masked(cls, value: str) -> str:
        # From the environment it arrives as a plain str; it must still print masked.
        return Secret(value)

    @field_validator("webhook_allow")
    @classmethod
    def _egress_rules(cls, value: str) -> str:
        Egress.parse(value)
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str) -> str:
        # uvicorn takes a malformed entry for a literal that never matches: say so instead.
        for item in proxy_list(value):
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value

    @functools.cached_property
    def egress(self) -> Egress:
        """Where webhooks may go: ``webhook_allow`` parsed once, not once per request."""
        return Egress.parse(self.webhook_allow)

    @field_validator("sync_path")
    @classmethod
    def _a_path(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/"):
            raise ValueError("must start with / and not end with /")
        return value

    @field_validator("default_region")
    @classmethod
    def _a_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region and not regions.known(region):
            raise ValueError("not a country code phone numbers are known for (e.g. GB, KE, US)")
        return region

    @field_validator("public_url")
    @classmethod
    def _a_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @classmethod
    def from_env(cls, **flags: Any) -> Settings:
        """Build from flags, then ``SMSSYNC_*`` variables; name every bad value."""
        try:
            return cls(**{k: v for k, v in flags.items() if v is not None})
        except ValidationError as exc:
            bad = []
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else "settings"
                message = error["msg"].removeprefix("Value error, ")
                # A secret is never repeated: error messages reach logs and terminals.
                got = "" if name in SECRETS else f", got {error['input']!r}"
                bad.append(f"{name} ({variable(name)}): {message}{got}")
            raise ConfigError("; ".join(bad)) from None

    @property
    def store_url(self) -> str:
        """Return the database URL, SQLite in the data folder by default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'smssync.db'}"

    @property
    def base_url(self) -> str:
        """Return the base URL phones are given, without a trailing slash: the public URL,
        else the address served on, the machine's LAN address for a wildcard."""
        return reach.base_url(self.public_url, self.host, self.port)

    @property
    def reach_warning(self) -> str | None:
        """Say why no phone can use the Sync URLs printed from these settings, if so."""
        return reach.loopback_warning(self.base_url, self.host)

    @property
    def sync_url(self) -> str:
        """Return the shared Sync URL (devices identified by secret or Basic auth)."""
        return self.base_url + self.sync_path

    def device_url(self, token: str) -> str:
        """Return a device's own Sync URL for its path token."""
        return f"{self.sync_url}/d/{token}"

    def to_env(self) -> dict[str, str]:
        """Return the ``SMSSYNC_*`` variables that rebuild these settings in a worker."""
        return {variable(name): str(value) for name, value in self}


def proxy_list(value: str) -> list[str]:
    """Return the entries of ``forwarded_allow_ips``, blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def variable(name: str) -> str:
    """Return the environment variable of a setting."""
    return f"{ENV_PREFIX}{name.upper()}"


def flag_of(name: str) -> Flag:
    """Return which commands take the setting ``name`` as a flag."""
    marks = [m for m in Settings.model_fields[name].metadata if isinstance(m, Flag)]
    return marks[0] if marks else Flag.SERVE
