"""``smssync user …`` on a real data folder: argon2 hashes only, roles, password changes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from smssync.cli import main


def run(data: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data)], input=stdin)
    return result.exit_code, result.output


def test_users_are_added_listed_changed_and_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = run(
        data,
        "user",
        "add",
        "amy",
        "--role",
        "operator",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert code == 0 and "added amy (operator)" in out
    # Prompted, twice, when stdin is not named.
    code, out = run(
        data, "user", "add", "bob", "--role", "viewer", stdin="pw for bob\npw for bob\n"
    )
    assert code == 0, out
    code, out = run(data, "user", "list", "--json")
    listed = json.loads(out)
    assert [(u["name"], u["role"]) for u in listed] == [("amy", "operator"), ("bob", "viewer")]
    assert all("hash" not in key for u in listed for key in u)
    with sqlite3.connect(data / "smssync.db") as db:
        [stored] = db.execute("SELECT password_hash FROM users WHERE name = 'amy'").fetchone()
    assert stored.startswith("$argon2id$") and "a long password" not in stored

    code, out = run(data, "user", "set-password", "amy", "--password-stdin", stdin="new password\n")
    assert code == 0 and "password of amy changed" in out
    code, out = run(data, "user", "remove", "bob")
    assert code == 0 and "removed bob" in out
    code, out = run(data, "user", "list", "--json")
    assert [u["name"] for u in json.loads(out)] == ["amy"]


def test_bad_input_is_refused_clearly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = run(
        data, "user", "add", "amy", "--role", "viewer", "--password-stdin", stdin="short\n"
    )
    assert code == 2 and "at least 8 characters" in out
    code, out = run(data, "user", "add", "amy", "--role", "boss", "--password-stdin", stdin="x" * 9)
    assert code == 2 and "boss" in out
    run(
        data,
        "user",
        "add",
        "amy",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="a long password\n",
    )
    code, out = run(
        data,
        "user",
        "add",
        "amy",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert code == 1 and "a user named 'amy' exists" in out
    code, out = run(data, "user", "remove", "nobody")
    assert code == 1 and "no user named 'nobody'" in out
    code, out = run(
        data, "user", "set-password", "nobody", "--password-stdin", stdin="a long password\n"
    )
    assert code == 1 and "no user named 'nobody'" in out


def test_the_last_admin_is_not_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ("user", "add", "root", "--role", "admin", "--password-stdin")
    assert run(data, *args, stdin="a long password\n")[0] == 0
    code, out = run(data, "user", "remove", "root")
    assert code == 1 and "'root' is the last admin" in out
