"""The environment rule of the CLI, through the real ``smssync`` command on a real store.

A setting is ``SMSSYNC_<SETTING>`` for every command; a command's own option is
``SMSSYNC_<COMMAND>_<FLAG>``; a flag wins over its variable (docs/configuration.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from smssync.cli import main


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner(env=env).invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def listed(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(run(env, "messages", "--json", *args))
    return rows


def test_settings_and_command_options_read_their_variables(tmp_path: Path, store_url: str) -> None:
    # The store is found through the settings' variables alone, by every command.
    store = {"SMSSYNC_DATABASE_URL": store_url, "SMSSYNC_DATA_DIR": str(tmp_path / "data")}
    uuid = run(store, "send", "--to", "+254700000001", "hello").strip()
    assert [m["uuid"] for m in listed(store, "--direction", "out")] == [uuid]

    # A command's option: SMSSYNC_<COMMAND>_<FLAG>, and the flag wins over it.
    outgoing = {**store, "SMSSYNC_MESSAGES_DIRECTION": "out"}
    assert [m["uuid"] for m in listed(outgoing)] == [uuid]
    assert listed(outgoing, "--direction", "in") == []
    # --direction is not a setting: SMSSYNC_DIRECTION is no variable of smssync.
    assert listed({**store, "SMSSYNC_DIRECTION": "out"}) == []
    json_by_variable = run({**outgoing, "SMSSYNC_MESSAGES_JSON": "1"}, "messages")
    assert json.loads(json_by_variable)[0]["uuid"] == uuid


def test_a_flag_wins_over_its_setting_variable(tmp_path: Path) -> None:
    env = {"SMSSYNC_DATA_DIR": str(tmp_path / "elsewhere")}
    here = str(tmp_path / "here")
    run(env, "send", "--data-dir", here, "--to", "+254700000001", "hi")
    assert (tmp_path / "here" / "smssync.db").exists()
    assert not (tmp_path / "elsewhere").exists()
    # The same store through the variable, as the server would see it.
    assert len(listed({"SMSSYNC_DATA_DIR": here}, "--direction", "out")) == 1


def test_a_serve_setting_is_checked_by_every_command(tmp_path: Path) -> None:
    env = {"SMSSYNC_DATA_DIR": str(tmp_path), "SMSSYNC_WORKERS": "0"}
    output = run(env, "messages", code=2)
    assert "SMSSYNC_WORKERS" in output


def test_device_urls_follow_the_store_settings(tmp_path: Path) -> None:
    env = {
        "SMSSYNC_DATA_DIR": str(tmp_path),
        "SMSSYNC_PUBLIC_URL": "https://sms.example.org",
        "SMSSYNC_SYNC_PATH": "/in",
    }
    added = json.loads(run(env, "device", "add", "p1", "--json"))
    assert added["shared_sync_url"] == "https://sms.example.org/in"
    flagged = json.loads(run(env, "device", "add", "p2", "--json", "--sync-path", "/other"))
    assert flagged["sync_url"].startswith("https://sms.example.org/other/d/")
