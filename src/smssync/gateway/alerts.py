"""What the gateway says for itself: alerts to the Sync URL (E8, G-18) and the answers to
query codes sent by SMS (``@20`` to ``@40``)."""

from __future__ import annotations

import asyncio
import logging

from smssync.backends.base import Backend
from smssync.errors import ProtocolError
from smssync.gateway.client import SyncClient
from smssync.gateway.routing import query_answer

log = logging.getLogger("smssync.gateway")

#: Tries of one alert before it is given up (it is not worth a durable queue).
ALERT_ATTEMPTS = 3


async def alert(client: SyncClient, text: str) -> None:
    """Post an alert to one Sync URL, retrying a few times with a growing pause."""
    for attempt in range(ALERT_ATTEMPTS):
        try:
            await client.alert(text)
            return
        except ProtocolError as exc:
            log.info("alert to %s failed (%d): %s", client.name, attempt + 1, exc.message)
            await asyncio.sleep(2.0**attempt)


async def compose(clients: dict[str, SyncClient], backend: Backend, kind: str, content: str) -> str:
    """Return the text of a local send; query answers are worked out now."""
    if kind != "query":
        return content
    probes: list[tuple[str, int | None]] = []
    if content in ("@20", "@40"):
        for client in clients.values():
            probes.append((client.config.title or client.name, await client.probe()))
    battery = None
    if content in ("@30", "@40") and backend.capabilities.battery:
        battery = (await backend.status()).battery_percent
    return query_answer(content, probes, battery)
