"""The app as ``smssync serve`` builds it for its workers (``app.factory``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_worker_app_freezes_what_start_up_made(tmp_path: Path) -> None:
    # In a process of its own: a freeze here would keep the test session's objects forever.
    code = (
        "import gc; from smssync.server.app import factory; "
        "before = gc.get_freeze_count(); factory(); print(before, gc.get_freeze_count())"
    )
    env = {**os.environ, "SMSSYNC_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    before, after = map(int, out.stdout.split())
    assert before == 0 and after > 10_000  # modules, tables, the app: not walked again
