"""The file through which the processes of one data folder tell each other of changes."""

from __future__ import annotations

import stat
from pathlib import Path

from smssync.store.engine import ChangeStamp


def test_each_change_is_seen_once_by_every_other_reader(tmp_path: Path) -> None:
    path = tmp_path / "changes.stamp"
    writer, reader = ChangeStamp(path), ChangeStamp(path)
    assert not reader.moved()  # no file yet: nothing changed
    writer.touch()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    late = ChangeStamp(path)  # started after the change: it has nothing to forget
    assert not late.moved()
    assert reader.moved() and not reader.moved()
    writer.touch()
    writer.touch()  # two changes within one clock tick still differ
    assert reader.moved() and late.moved()


def test_the_file_starts_over_and_the_restart_is_a_change(tmp_path: Path) -> None:
    path = tmp_path / "changes.stamp"
    path.write_bytes(b"." * ChangeStamp.LIMIT)
    reader, writer = ChangeStamp(path), ChangeStamp(path)
    writer.touch()
    assert path.stat().st_size == 1
    assert reader.moved()
