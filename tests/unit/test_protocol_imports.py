"""smssync.protocol is pure: it imports only an allow-list of stdlib modules (house style)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import smssync.protocol

PACKAGE = Path(smssync.protocol.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))

# Pure computation only: no sockets, files, processes, threads, logging or clocks' side effects.
ALLOWED_STDLIB = {
    "__future__",
    "base64",
    "binascii",
    "codecs",
    "collections",
    "collections.abc",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "hmac",
    "json",
    "re",
    "typing",
    "urllib.parse",
    "xml.parsers",
    "xml.parsers.expat",
}
ALLOWED_PROJECT = {"smssync.records", "smssync.errors", "smssync.protocol"}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__", "compile", "breakpoint"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add("smssync.protocol")  # a relative import stays inside the package
            elif node.module:
                names.add(node.module)
    return names


def allowed(name: str) -> bool:
    if name in ALLOWED_STDLIB or name in ALLOWED_PROJECT:
        return True
    return name.startswith("smssync.protocol.")


def test_every_module_is_checked() -> None:
    names = {path.stem for path in MODULES}
    expected = {"query", "body", "inbound", "tasks", "results", "timestamps", "replies"}
    assert expected <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_are_allow_listed(path: Path) -> None:
    offenders = sorted(name for name in imports_of(path) if not allowed(name))
    assert offenders == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_io_builtins_are_called(path: Path) -> None:
    calls = {
        node.func.id
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert calls & FORBIDDEN_CALLS == set()


def test_allow_list_is_stdlib_only() -> None:
    top_levels = {name.split(".")[0] for name in ALLOWED_STDLIB}
    assert top_levels <= sys.stdlib_module_names | {"__future__"}
    assert not top_levels & {"os", "io", "socket", "logging", "sqlite3", "asyncio", "subprocess"}
