"""The pure packages stay pure: no I/O, no imports from the I/O side (house style)."""

from __future__ import annotations

import ast
from pathlib import Path

import smssync

ROOT = Path(smssync.__file__).parent
PURE = [
    *ROOT.glob("records/*.py"),
    ROOT / "errors.py",
    *ROOT.glob("protocol/*.py"),
    *ROOT.glob("gsm/*.py"),
]
FORBIDDEN = {
    "smssync.store",
    "smssync.server",
    "smssync.gateway",
    "smssync.backends",
    "smssync.sim",
    "smssync.cli",
    "socket",
    "sqlite3",
    "asyncio",
    "subprocess",
    "httpx",
    "sqlalchemy",
    "serial",
    "os",
    "shutil",
    "threading",
    "logging",
    "urllib.request",
    "http.client",
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_pure_modules_import_nothing_with_io() -> None:
    assert len(PURE) > 5
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in PURE
        for name in imported(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert offenders == set()


def test_pure_modules_do_not_open_files() -> None:
    for path in PURE:
        calls = {
            node.func.id
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert "open" not in calls, path
