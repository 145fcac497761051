"""Every ``task=sent`` reply lost: each task SMS is still sent once and ends ``delivered``.

``smssync serve``, ``smssync sim`` and ``smssync gateway`` as processes; between gateway and
server a proxy that forwards every ``task=sent`` request and then closes the connection
without the reply, so the server has accepted the uuids and the gateway never hears so.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import httpx

from tests.e2e.serverproc import Server
from tests.e2e.test_gateway_e2e import GatewayProc, SimProc, gateway_toml, wait_for
from tests.e2e.test_gateway_faults import FaultProxy

TASKS = 5
LEASE_S = 10


class LoseSentReplies(FaultProxy):
    """Forward everything; drop the reply of every ``task=sent``."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, rate=0.0)
        self.lost: collections.Counter[str] = collections.Counter()

    async def _answer(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        content: bytes,
        writer: asyncio.StreamWriter,
    ) -> None:
        if "task=sent" not in target:
            await super()._answer(method, target, headers, content, writer)
            return
        send_headers = {k: v for k, v in headers.items() if k in ("content-type", "user-agent")}
        await self._client.request(method, target, content=content, headers=send_headers)
        self.lost["task=sent"] += 1


def test_tasks_whose_acknowledgement_was_lost_are_sent_once_and_delivered(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path)
    device = server.add_device("gw", "--secret", "acks")
    server.cli("device", "set", "gw", "--ack-mode", "handshake", "--lease-s", str(LEASE_S))
    server.start()
    sim = SimProc(tmp_path)
    sim.start()
    proxy = LoseSentReplies(server.base)
    proxy.start()
    path = httpx.URL(device["sync_url"]).path
    config = gateway_toml(tmp_path, sim, f"http://127.0.0.1:{proxy.port}{path}", "acks")
    gateway = GatewayProc(config)
    try:
        queued = [
            server.cli_json("send", "--to", f"+25472200000{i}", f"task {i}")["uuid"]
            for i in range(TASKS)
        ]
        gateway.start()

        def statuses() -> dict[str, str]:
            rows = server.cli_json("messages", "--direction", "out")
            return {r["uuid"]: r["status"] for r in rows if r["uuid"] in queued}

        wait_for(lambda: proxy.lost["task=sent"] >= 1, 30, "a task=sent whose reply is lost")
        wait_for(lambda: set(statuses().values()) == {"delivered"}, 60, "every task SMS delivered")
        sent = [r["text"] for r in sim.outbox() if r["text"].startswith("task ")]
    finally:
        gateway.stop()
        proxy.stop()
        sim.stop()
        server.stop()
    assert sorted(sent) == sorted(f"task {i}" for i in range(TASKS))
