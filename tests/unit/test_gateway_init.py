"""``smssync gateway init`` with values filled into the commented example."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from smssync.cli import main
from smssync.gateway.config import EXAMPLE_CONFIG, load_config
from smssync.gateway.initconfig import InitValues, filled_example


def test_plain_init_writes_the_example(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    result = CliRunner().invoke(main, ["gateway", "init", "--config", str(config)])
    assert result.exit_code == 0 and config.read_text() == EXAMPLE_CONFIG
    again = CliRunner().invoke(main, ["gateway", "init", "--config", str(config)])
    assert again.exit_code == 1 and "exists (use --force" in again.output


def test_init_takes_the_modem_and_the_device_from_device_add(tmp_path: Path) -> None:
    device = tmp_path / "modem-gw.json"
    device.write_text(
        json.dumps({"name": "modem-gw", "sync_url": "http://h:1/smssync/d/t", "secret": 'a"b'})
    )
    config = tmp_path / "gateway.toml"
    args = ["--at-port", "ttyEMU0", "--device-json", str(device), "--own-number", "+254700000111"]
    result = CliRunner().invoke(main, ["gateway", "init", "--config", str(config), *args])
    assert result.exit_code == 0, result.output
    loaded = load_config(config)
    assert loaded.backend.kind == "at"
    assert loaded.backend.at.port == str(Path("ttyEMU0").absolute())
    [url] = loaded.sync_urls
    assert (url.url, url.secret) == ("http://h:1/smssync/d/t", 'a"b')
    assert (loaded.device.device_id, loaded.device.own_number) == ("modem-gw", "+254700000111")
    assert config.stat().st_mode & 0o077 == 0
    # The other keys keep their comments.
    assert "# Retry a failed upload after 30 s" in config.read_text()


def test_init_refuses_what_is_not_device_add_json(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("Device modem-gw\n")
    config = tmp_path / "gateway.toml"
    result = CliRunner().invoke(
        main, ["gateway", "init", "--config", str(config), "--device-json", str(bad)]
    )
    assert result.exit_code == 1 and "smssync device add --json" in result.output
    assert not config.exists()


def test_every_value_lands_on_its_line() -> None:
    text = filled_example(
        InitValues(backend="termux", device_id="d", own_number="+1", sync_url="http://x/")
    )
    assert 'kind = "termux"' in text and 'device_id = "d"' in text
    assert 'url = "http://x/"' in text and 'own_number = "+1"' in text
