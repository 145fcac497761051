"""docs/deploy.md as written: the install from a built wheel, and its systemd units."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serverproc import create_pg_database, drop_pg_database, pg_url

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"
WHEEL = "smssync-0.1.0-py3-none-any.whl"
#: Wheels of smssync's dependencies, kept between runs (see ``pip_install``).
WHEELHOUSE = Path.home() / ".cache" / "smssync-tests" / "wheelhouse"
#: Where the guide installs, and so what the test replaces with its own folders.
PREFIX = "/opt/smssync"


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command of the guide; its output is kept for the assertion's message."""
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def pip_install(venv: Path, requirement: str) -> None:
    """``pip install requirement`` as the guide says, its dependencies from local wheels.

    What pip resolves is the same; where it finds the files is not: the wheelhouse, filled
    from the package index on the first run on a machine (or when a dependency changed),
    spares every later run a minute of index round trips.
    """
    pip = venv / "bin" / "pip"
    offline: list[str | Path] = [
        pip,
        "install",
        "-q",
        "--no-index",
        "--find-links",
        WHEELHOUSE,
        requirement,
    ]
    if run(*offline).returncode == 0:
        return
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    ok(run(pip, "wheel", "-q", "--wheel-dir", WHEELHOUSE, "--find-links", WHEELHOUSE, requirement))
    # pip copies smssync's own wheel there too; a later build of the same version must not
    # be read from it (pip takes the file of that name it already has, and its old
    # dependencies with it).
    for own in WHEELHOUSE.glob("smssync-*.whl"):
        own.unlink()
    ok(run(*offline))


def guide_says(command: str) -> None:
    """The command the test runs is the guide's, word for word (paths aside)."""
    assert command in GUIDE.read_text(), f"docs/deploy.md no longer says: {command}"


@pytest.mark.install
@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_the_guide_installs_from_a_wheel_without_and_with_postgres(tmp_path: Path) -> None:
    venv = tmp_path / "opt-smssync"
    data = tmp_path / "var-lib-smssync"
    guide_says(f"sudo python3 -m venv {PREFIX}")
    ok(run(sys.executable, "-m", "venv", venv))
    # The guide builds in a venv of its own; the fresh one does as well.
    guide_says("/pip wheel --no-deps --wheel-dir dist .")
    ok(
        run(
            venv / "bin" / "pip", "wheel", "-q", "--no-deps", "--wheel-dir", tmp_path / "dist", ROOT
        )
    )
    wheel = tmp_path / "dist" / WHEEL
    assert wheel.is_file(), sorted(p.name for p in (tmp_path / "dist").iterdir())
    guide_says(f"sudo {PREFIX}/bin/pip install './{WHEEL}[serial]'")
    pip_install(venv, f"{wheel}[serial]")

    guide_says(f"SMSSYNC_DATA_DIR=/var/lib/smssync {PREFIX}/bin/smssync serve --get /readyz")
    smssync = venv / "bin" / "smssync"
    ready = json.loads(
        ok(run(smssync, "serve", "--get", "/readyz", env={"SMSSYNC_DATA_DIR": str(data)}))
    )
    assert ready["ok"] is True and ready["migration"]
    assert (data / "smssync.db").is_file()
    # Without the extra there is no PostgreSQL driver, and the error says how to add it.
    assert run(venv / "bin" / "python", "-c", "import psycopg").returncode == 1
    database = create_pg_database()
    try:
        url = {"SMSSYNC_DATABASE_URL": pg_url(database), "SMSSYNC_DATA_DIR": str(data)}
        refused = run(smssync, "serve", "--get", "/readyz", env=url)
        assert refused.returncode == 1
        assert "pip install 'smssync[postgres]'" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr

        pip_install(venv, f"{wheel}[serial,postgres]")
        ready = json.loads(ok(run(smssync, "serve", "--get", "/readyz", env=url)))
        assert ready["ok"] is True and ready["migration"]
    finally:
        drop_pg_database(database)


def units() -> dict[str, str]:
    """Each systemd unit of the guide, by its file name."""
    found = re.findall(
        r"^`/etc/systemd/system/([\w.-]+)`[^\n]*\n\n```ini\n(.*?)```",
        GUIDE.read_text(),
        re.M | re.S,
    )
    return dict(found)


def test_the_guide_has_its_units() -> None:
    assert sorted(units()) == ["smssync-gateway.service", "smssync-server.service"]


@pytest.mark.parametrize("name", sorted(units()))
def test_the_guides_units_pass_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt install systemd)")
    # verify checks that ExecStart's program exists: this test's own smssync stands in for
    # the one the guide installs.
    here = Path(sys.executable).parent / "smssync"
    assert here.is_file()
    unit = tmp_path / name
    unit.write_text(units()[name].replace(f"{PREFIX}/bin/smssync", str(here)))
    result = run(analyze, "verify", unit)
    # verify exits 0 on unknown keys and bad values too, and only says so: nothing it says
    # about the unit may be left.
    said = [line for line in (result.stdout + result.stderr).splitlines() if name in line]
    assert result.returncode == 0 and said == [], result.stdout + result.stderr
