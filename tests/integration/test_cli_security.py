"""The CLI on a real data folder: private files, unique secrets, no private webhook hosts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner

from smssync.cli import main


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_device_add_makes_private_files_and_refuses_a_secret_in_use(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    first = runner.invoke(main, ["device", "add", "a", "--secret", "same", "--data-dir", str(data)])
    assert first.exit_code == 0, first.output
    assert mode(data) == 0o700
    assert mode(data / "smssync.db") == mode(data / "server.key") == 0o600
    second = runner.invoke(
        main, ["device", "add", "b", "--secret", "same", "--data-dir", str(data)]
    )
    assert second.exit_code == 1
    assert "another device has this secret" in second.output
    listed = runner.invoke(main, ["device", "list", "--json", "--data-dir", str(data)])
    assert [d["name"] for d in json.loads(listed.output)] == ["a"]


def test_webhook_add_refuses_a_private_host_unless_allowed(tmp_path: Path) -> None:
    args = ["webhook", "add", "http://2130706433:9/hook", "--data-dir", str(tmp_path)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "loopback" in refused.output and "SMSSYNC_WEBHOOK_ALLOW" in refused.output
    allowed = CliRunner(env={"SMSSYNC_WEBHOOK_ALLOW": "127.0.0.0/8"}).invoke(main, args)
    assert allowed.exit_code == 0, allowed.output
