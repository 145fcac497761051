"""Files of the data folder, readable by their owner only (issue 14, finding 9).

A copied database file gives away what it holds, and the server key everything: the folder
is 0700, the database, its -wal and -shm and the key file 0600, whatever the umask.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: What SQLite keeps next to a database in WAL mode.
SQLITE_SIDE_FILES = ("-wal", "-shm")


def private_dir(path: Path) -> None:
    """Create a folder readable by its owner only (0700), or make an existing one so."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o700)


def private_file(path: Path) -> None:
    """Create a file readable and writable by its owner only (0600), or make it so."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)


def private_database(path: Path) -> None:
    """Make a SQLite database and its side files 0600 before SQLite opens them: SQLite
    creates the -wal and -shm files with the database file's permissions."""
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists() and stat.S_IMODE(side.stat().st_mode) & 0o077:
            side.chmod(0o600)
