"""Fixtures for end-to-end tests: real server processes over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.serverproc import Server, create_pg_database, drop_pg_database, pg_url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A running ``smssync serve`` on SQLite or on the real PostgreSQL, shared by a module."""
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    database = create_pg_database() if request.param == "postgres" else None
    proc = Server(tmp, pg_url(database) if database else "")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        if database:
            drop_pg_database(database)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client, like a phone's."""
    with httpx.Client(timeout=30, headers={"user-agent": "SMSSync-Android/v3.1.1"}) as client:
        yield client
