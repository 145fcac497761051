"""``smssync campaign`` and ``smssync optout`` through the real command on a real store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from smssync.cli import main


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    """Run smssync; return its output."""
    result = CliRunner(env=env).invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def as_json(env: dict[str, str], *args: str) -> Any:
    """Run smssync with --json; return its parsed standard output (notes go to stderr)."""
    result = CliRunner(env=env).invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_create_from_csv_then_show_pause_resume_cancel_and_export(
    tmp_path: Path, store_url: str
) -> None:
    env = {
        "SMSSYNC_DATABASE_URL": store_url,
        "SMSSYNC_DATA_DIR": str(tmp_path / "data"),
        "SMSSYNC_DEFAULT_REGION": "KE",
    }
    assert "+254700000003 added" in run(env, "optout", "add", "0700000003")
    people = tmp_path / "people.csv"
    people.write_text("phone,first\n0700000001,Ann\n0700000002,Bob\nnope,Cy\n0700000003,Dee\n")
    template = "Dear {first}, the clinic opens at 9"
    preview = run(env, "campaign", "create", "--csv", str(people), "--template", template)
    assert "not sent: line 3 'nope'" in preview
    assert "not sent: line 4 '0700000003': on the opt-out list" in preview
    assert "preview +254700000001: Dear Ann, the clinic opens at 9" in preview
    assert "gsm7, 1 segment(s) each; 2 segments in all" in preview
    assert "2 queued, 1 invalid, 1 opted out" in preview
    [listed] = as_json(env, "campaign", "list")
    cid = str(listed["id"])
    assert listed["messages"] == {"queued": 2}
    assert as_json(env, "campaign", "pause", cid)["status"] == "paused"
    assert as_json(env, "campaign", "show", cid)["recipients"]["pending"] == 2
    assert "is paused, not running" in run(env, "campaign", "pause", cid, code=1)
    assert as_json(env, "campaign", "resume", cid)["status"] == "running"
    assert as_json(env, "campaign", "cancel", cid)["recipients"]["cancelled"] == 2
    rows = list(csv.DictReader(io.StringIO(run(env, "campaign", "results", cid))))
    assert [(r["to_raw"], r["state"]) for r in rows] == [
        ("0700000001", "cancelled"),
        ("0700000002", "cancelled"),
        ("nope", "invalid"),
        ("0700000003", "opted_out"),
    ]
    assert "no campaign 99" in run(env, "campaign", "show", "99", code=1)
    assert [r["number"] for r in as_json(env, "optout", "list")] == ["+254700000003"]
    assert "removed" in run(env, "optout", "remove", "+254700000003")


def test_dry_run_and_refusals(tmp_path: Path) -> None:
    env = {"SMSSYNC_DATA_DIR": str(tmp_path), "SMSSYNC_DEFAULT_REGION": "KE"}
    planned = as_json(
        env, "campaign", "create", "--to", "0700000001", "--template", "Привет", "--dry-run"
    )
    assert (planned["encoding"], planned["campaign"]) == ("ucs2", None)
    assert as_json(env, "campaign", "list") == []
    out = run(env, "campaign", "create", "--to", "abc", "--template", "hi", code=1)
    assert "no recipient can be sent" in out
    out = run(env, "campaign", "create", "--template", "hi", code=2)
    assert "--csv FILE or --to" in out
    args: tuple[str, ...] = ("campaign", "create", "--to", "0700000001", "--template", "hi")
    args += ("--window", "8-20")
    assert "not a window" in run(env, *args, code=2)
    args = ("campaign", "create", "--to", "0700000001", "--template", "{a.b}")
    assert "placeholder" in run(env, *args, code=2)
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nAnn\n")
    args = ("campaign", "create", "--csv", str(bad), "--template", "hi")
    assert "no number column" in run(env, *args, code=2)
