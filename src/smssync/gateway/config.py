"""``gateway.toml``: the App's settings, read once into frozen, validated objects.

Errors name the file, the key and the problem: ``gateway.toml: sync_urls[0].method: ...``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from smssync.errors import ConfigError
from smssync.records import WIRE_KEY_FIELDS, BodyFormat, KeyMap

_WIRE_KEYS = WIRE_KEY_FIELDS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyncUrlConfig(_Section):
    """One Sync URL with its own secret, encoding, keys and filters."""

    #: A short name for logs and ``gateway status``; unique.
    title: str = ""
    #: The Sync URL; ``user:pass@`` becomes HTTP Basic auth.
    url: str
    secret: str = ""
    enabled: bool = True
    method: Literal["POST", "PUT"] = "POST"
    format: BodyFormat = BodyFormat.FORM
    #: Send XML labelled ``application/json`` as the App does (G-1).
    app_xml_label: bool = False
    #: Renamed E1 keys: ``{"from" = "sender"}``.
    keys: dict[str, str] = Field(default_factory=dict)
    #: Forward only SMS containing one of these (case-insensitive) ... (G-9).
    keywords: list[str] = Field(default_factory=list)
    #: ... or matching one of these regular expressions (case-insensitive, anywhere).
    regex: list[str] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("keys")
    @classmethod
    def _known_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, name in value.items():
            if key not in _WIRE_KEYS:
                raise ValueError(f"{key!r} is not one of {', '.join(_WIRE_KEYS)}")
            if not name:
                raise ValueError(f"the new name for {key!r} is empty")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value

    @property
    def key_map(self) -> KeyMap:
        """Return the E1 key names for this URL."""
        return KeyMap(**{_WIRE_KEYS[k]: v for k, v in self.keys.items()})

    @property
    def name(self) -> str:
        """Return the title, or the URL without userinfo when untitled."""
        if self.title:
            return self.title
        return re.sub(r"//[^/@]*@", "//", self.url)


class DeviceConfig(_Section):
    """Who the gateway is."""

    #: The App's "Unique ID" (sent as ``device_id``).
    device_id: str = ""
    #: The phone's own number (sent as ``sent_to``); the backend's is used when empty.
    own_number: str = ""
    #: Country for numbers without ``+`` in the white- and blacklist (ISO 3166 alpha-2).
    region: str = "KE"
    user_agent: str = ""


class AtConfig(_Section):
    """``[backend.at]``: a USB or serial GSM/LTE modem (docs/devices.md)."""

    #: The AT port, best by its stable ``/dev/serial/by-id/...`` name.
    port: str = ""
    baudrate: int = Field(default=115200, gt=0)
    #: Entered once if the SIM asks; never retried.
    pin: str = ""
    #: Service centre to set when the SIM has none.
    smsc: str = ""
    storage: Literal["SM", "ME", "MT"] = "SM"
    command_timeout_s: float = Field(default=10.0, gt=0)
    send_timeout_s: float = Field(default=60.0, gt=0)
    registration_wait_s: float = Field(default=60.0, ge=0)
    concat_timeout_s: float = Field(default=600.0, gt=0)
    report_window_s: float = Field(default=600.0, gt=0)
    send_interval_s: float = Field(default=0.0, ge=0)
    #: List the SIM's store this often, for SMS whose new-message notice (+CMTI) was lost.
    sweep_interval_s: float = Field(default=30.0, gt=0)


class TermuxConfig(_Section):
    """``[backend.termux]``: the gateway runs on the phone, through Termux:API."""

    poll_interval_s: float = Field(default=10.0, gt=0)
    #: Every termux-* call is killed after this long (battery optimisation can hang them).
    command_timeout_s: float = Field(default=30.0, gt=0)
    #: SIM slot for termux-sms-send -s; empty for the default.
    sim_slot: str = ""
    #: Least time between two sends: Android allows 30 SMS parts per 30 minutes.
    send_interval_s: float = Field(default=65.0, ge=0)
    #: Android tells Termux nothing after accepting a send. True reports that acceptance as
    #: sent ``-1``; false (default) reports no sent code: the outcome stays unknown.
    submitted_is_sent: bool = False


class GammuConfig(_Section):
    """``[backend.gammu]``: a phone or modem through libGammu (``smssync[gammu]``)."""

    #: A gammurc file; relative to the config file.
    config: str = "gammurc"
    #: The gammurc section number (0 for ``[gammu]``).
    section: int = Field(default=0, ge=0)
    poll_interval_s: float = Field(default=5.0, gt=0)
    report_window_s: float = Field(default=600.0, gt=0)


class BackendConfig(_Section):
    """Which phone the gateway drives."""

    kind: Literal["sim", "at", "termux", "gammu"] = "sim"
    #: ``smssync sim``'s control URL.
    url: str = "http://127.0.0.1:8090"
    #: The simulated phone's number.
    number: str = "+254700000100"
    at: AtConfig = AtConfig()
    termux: TermuxConfig = TermuxConfig()
    gammu: GammuConfig = GammuConfig()


class ForwardConfig(_Section):
    """Uploading incoming SMS (E1) and its retries (G-8)."""

    first_delay_s: float = Field(default=30.0, gt=0)
    factor: float = Field(default=2.0, ge=1)
    cap_s: float = Field(default=3600.0, gt=0)
    #: Uploads in flight at once while a backlog drains.
    concurrency: int = Field(default=16, ge=1, le=256)
    timeout_s: float = Field(default=30.0, gt=0)


class TasksConfig(_Section):
    """Task polling (E4), the Message Results API (E5–E7) and delivery reports."""

    enabled: bool = True
    interval_s: float = Field(default=300.0, gt=0)
    results_api: bool = True
    delivery_reports: bool = True
    #: ``array`` (default) or ``app_string``: the App's double-encoded ``message_result``.
    results_encoding: Literal["array", "app_string"] = "array"
    #: ``app`` (``Feb 21, 2017 3:36:40 PM``, local time) or ``iso8601``.
    timestamps: Literal["app", "iso8601"] = "app"
    #: Add the secret to ``task=sent`` (the App omits it) (G-4).
    secret_in_sent: bool = True
    #: An offered task whose ``task=sent`` reply was lost is sent when ``task=result`` lists
    #: it this long after the offer. 0 for servers that list no message under a lease (ours,
    #: and servers without leases); else that server's lease (S-24).
    lease_s: float = Field(default=0.0, ge=0)


class RepliesConfig(_Section):
    """SMS the gateway sends back by itself."""

    #: Send the messages of an E1 reply (the App's "Get Reply from Server").
    from_server: bool = False
    #: Sent once to the sender of every accepted SMS when not empty.
    auto_reply: str = ""


class ListsConfig(_Section):
    """Senders to accept or drop (G-10); both on, the blacklist wins."""

    whitelist: list[str] = Field(default_factory=list)
    blacklist: list[str] = Field(default_factory=list)


class QueryCodesConfig(_Section):
    """``@10`` ``@20`` ``@30`` ``@40`` (G-17)."""

    enabled: bool = True
    #: Answer only these senders; empty answers everyone.
    senders: list[str] = Field(default_factory=list)


class AlertsConfig(_Section):
    """Battery and connectivity alerts (G-18)."""

    #: Number that receives alert SMS; empty sends none.
    number: str = ""
    battery_low_percent: int = Field(default=15, ge=0, le=100)
    #: How often battery and signal are read.
    check_interval_s: float = Field(default=60.0, gt=0)
    #: SMS the alert number after this long without reaching any Sync URL.
    no_data_after_s: float = Field(default=300.0, ge=0)


class GatewayConfig(_Section):
    """Everything ``smssync gateway`` needs."""

    device: DeviceConfig = DeviceConfig()
    backend: BackendConfig = BackendConfig()
    #: The local SQLite file, relative to the config file.
    store: str = "gateway.db"
    sync_urls: list[SyncUrlConfig] = Field(min_length=1)
    forward: ForwardConfig = ForwardConfig()
    tasks: TasksConfig = TasksConfig()
    replies: RepliesConfig = RepliesConfig()
    lists: ListsConfig = ListsConfig()
    query_codes: QueryCodesConfig = QueryCodesConfig()
    alerts: AlertsConfig = AlertsConfig()

    @field_validator("sync_urls")
    @classmethod
    def _unique_names(cls, value: list[SyncUrlConfig]) -> list[SyncUrlConfig]:
        names = [u.name for u in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two Sync URLs are named {name!r}; give them titles")
        return value

    @property
    def enabled_urls(self) -> list[SyncUrlConfig]:
        """Return the Sync URLs that receive anything (G-7)."""
        return [u for u in self.sync_urls if u.enabled]


def parse_config(text: str, source: str = "gateway.toml") -> GatewayConfig:
    """Read TOML text; ConfigError naming ``source``, the key and the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
            ).lstrip(".")
            problems.append(f"{source}: {key or '(top)'}: {error['msg']}")
        raise ConfigError("\n".join(problems)) from None


def load_config(path: Path) -> GatewayConfig:
    """Read a config file; the store path becomes relative to the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    config = parse_config(text, str(path))
    store = Path(config.store)
    if not store.is_absolute():
        config = config.model_copy(update={"store": str(path.parent / store)})
    return config


EXAMPLE_CONFIG = """\
# smssync gateway configuration: the SMSsync app's settings, in TOML.
# Run it with: smssync gateway --config gateway.toml

# The local SQLite file that keeps every SMS until each Sync URL confirmed it.
store = "gateway.db"

[device]
# The app's "Unique ID", sent as device_id with every incoming SMS.
device_id = "gateway1"
# This phone's own number, sent as sent_to (empty: the backend's, else device_id).
own_number = "+254700000100"
# Country for white/blacklist numbers written without +country code.
region = "KE"

[backend]
# "sim" (a phone of the network that `smssync sim` runs), "at" (a USB/serial modem),
# "termux" (this Android phone, through Termux:API) or "gammu" (the extra gammu, from the
# checkout: pip install -e '.[gammu]').
# Check it with: smssync gateway doctor
kind = "sim"
url = "http://127.0.0.1:8090"
number = "+254700000100"

# [backend.at]
# port = "/dev/serial/by-id/usb-HUAWEI_Technology_HUAWEI_Mobile-if02-port0"
# pin = ""              # entered once; a wrong PIN is never retried
# send_interval_s = 0
# sweep_interval_s = 30 # list the SIM this often, for SMS whose notice (+CMTI) was lost

# [backend.termux]
# poll_interval_s = 10
# send_interval_s = 65  # Android allows 30 SMS parts per 30 minutes
# Android gives Termux no send result: by default a task handed to Android is reported with
# no sent code (outcome unknown). true reports it as sent (-1), "submitted = sent".
# submitted_is_sent = false

# [backend.gammu]
# config = "gammurc"    # relative to this file

# One [[sync_urls]] table per Sync URL. user:password@ in the URL becomes HTTP Basic auth.
[[sync_urls]]
title = "main"
url = "http://127.0.0.1:8080/smssync"
secret = ""
enabled = true
method = "POST"          # or "PUT"
format = "form"          # "form", "json" or "xml"
# Rename the incoming-SMS keys as the app's custom keys do:
# keys = { from = "sender", message = "text" }
# Forward only SMS containing a keyword or matching a regex (empty: everything).
keywords = []
regex = []

[forward]
# Retry a failed upload after 30 s, then 60 s, 120 s ... at most an hour apart (with jitter).
first_delay_s = 30
factor = 2
cap_s = 3600
# Uploads in flight at once while a backlog drains.
concurrency = 16

[tasks]
# Poll every Sync URL for SMS to send (GET ?task=send) this often.
enabled = true
interval_s = 300
# The app's "Message Results API": POST ?task=sent before sending; report results.
results_api = true
# Ask for delivery reports and pass them on (GET/POST ?task=result).
delivery_reports = true
# "array" (default) or "app_string": the app's double-encoded message_result.
results_encoding = "array"
# "app" (Feb 21, 2017 3:36:40 PM) or "iso8601".
timestamps = "app"
# A task whose task=sent reply was lost is sent when task=result lists it this long
# after the offer: 0 for smssync and servers without leases; for a server that lists
# messages still under a lease, that lease.
lease_s = 0

[replies]
# Send the messages a server puts in its reply to an incoming SMS.
from_server = false
# Answer every accepted sender with this text (empty: no auto-reply).
auto_reply = ""

[lists]
# Numbers are compared in E.164 form; both lists on, the blacklist wins.
whitelist = []
blacklist = []

[query_codes]
# Answer @10 (reception), @20 (servers), @30 (battery), @40 (all) instead of forwarding.
enabled = true
senders = []

[alerts]
# Battery-low and no-data alerts go to this number by SMS (empty: none).
number = ""
battery_low_percent = 15
check_interval_s = 60
no_data_after_s = 300
"""
