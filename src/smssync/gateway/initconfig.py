"""``smssync gateway init`` with values: the commented example, with a person's answers in it.

The example stays the one documented file; a value replaces its line, so every other key
keeps its comment. Each line replaced must be there exactly once (a test pins that), and
the result is parsed before it is written, so init never writes a config the gateway
would refuse.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from smssync.errors import ConfigError
from smssync.gateway.config import EXAMPLE_CONFIG, parse_config

_AT_LINES = (
    '# [backend.at]\n# port = "/dev/serial/by-id/usb-HUAWEI_Technology_HUAWEI_Mobile-if02-port0"\n'
)


@dataclasses.dataclass(frozen=True)
class InitValues:
    """What ``gateway init`` was told; None keeps the example's value."""

    backend: str | None = None
    at_port: str | None = None
    sync_url: str | None = None
    secret: str | None = None
    device_id: str | None = None
    own_number: str | None = None


def _toml(value: str) -> str:
    # JSON's string escapes are a subset of TOML's basic strings.
    return json.dumps(value)


def _put(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise AssertionError(f"the example config has {text.count(old)} lines {old!r}")
    return text.replace(old, new)


def from_device_json(path: Path) -> dict[str, Any]:
    """Read what ``smssync device add --json`` printed: name, sync_url, secret."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not the JSON of smssync device add --json ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sync_url"), str):
        raise ConfigError(f"{path}: no sync_url (is it the output of smssync device add --json?)")
    return data


def filled_example(values: InitValues) -> str:
    """Return the example config with the given values; ConfigError when they do not parse."""
    text = EXAMPLE_CONFIG
    backend = values.backend or ("at" if values.at_port else None)
    if values.device_id is not None:
        text = _put(text, 'device_id = "gateway1"', f"device_id = {_toml(values.device_id)}")
    if values.own_number is not None:
        text = _put(
            text, 'own_number = "+254700000100"', f"own_number = {_toml(values.own_number)}"
        )
    if backend is not None:
        text = _put(text, 'kind = "sim"', f"kind = {_toml(backend)}")
    if values.at_port is not None:
        text = _put(text, _AT_LINES, f"[backend.at]\nport = {_toml(values.at_port)}\n")
    if values.sync_url is not None:
        text = _put(
            text, 'url = "http://127.0.0.1:8080/smssync"', f"url = {_toml(values.sync_url)}"
        )
    if values.secret is not None:
        text = _put(text, 'secret = ""', f"secret = {_toml(values.secret)}")
    parse_config(text)
    return text
