"""Fixtures of the application API tests: the whole server in-process, one key per scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from smssync.records import Scope
from smssync.server.apikeys import create_key
from smssync.server.app import create_app
from smssync.settings import Settings
from smssync.store.engine import Database


@pytest.fixture
async def api_client(store: Database) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the whole server (Sync URL and API)."""
    app = create_app(Settings(default_region="KE"), store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sms") as c:
            yield c


@pytest.fixture
async def keys(store: Database) -> dict[str, str]:
    """One key per scope, by scope name."""
    made = {}
    for scope in Scope:
        _, key = await create_key(store, scope.value, [scope], datetime.now(UTC))
        made[scope.value] = key
    return made
