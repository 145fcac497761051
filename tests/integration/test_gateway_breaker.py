"""A backlog against a Sync URL that is down, then up: few attempts, every SMS once.

Real sockets only: the gateway's own httpx transport, a port with nothing listening, then a
real HTTP server (uvicorn) on that port.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from pathlib import Path
from typing import Any

import uvicorn

from smssync.gateway.config import parse_config
from smssync.gateway.records import InboundRecord
from smssync.gateway.runner import Gateway
from smssync.gateway.store import GatewayStore
from smssync.protocol import body, tasks
from smssync.sim.backend import SimBackend
from smssync.sim.network import SimNetwork
from tests.ports import free_port

BACKLOG = 1000
GATEWAY_NUMBER = "+254700000100"


class Counting:
    """An SMSsync server that stores E1 by message_id and counts the posts of each."""

    def __init__(self) -> None:
        self.posts: collections.Counter[str] = collections.Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        fields = body.parse_fields(raw, headers.get(b"content-type", b"").decode())
        self.posts[fields["message_id"]] += 1
        reply = tasks.build_inbound_reply([])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": reply})


def test_a_down_url_gets_one_probe_at_a_time_and_everything_once_it_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    cfg = parse_config(
        f"""
store = "{tmp_path / "gw.db"}"
[device]
own_number = "{GATEWAY_NUMBER}"
[forward]
first_delay_s = 0.1
factor = 2
cap_s = 0.4
[tasks]
enabled = false
[[sync_urls]]
title = "main"
url = "http://127.0.0.1:{port}/smssync"
""",
        "test.toml",
    )
    server = Counting()

    async def main() -> int:
        store = GatewayStore(Path(cfg.store))
        await store.open()
        await asyncio.gather(
            *(
                store.record_inbound(
                    InboundRecord(f"k{i}", str(uuid.uuid4()), "+254711000001", f"m{i}", "1", 1.0),
                    {"main": "pending"},
                )
                for i in range(BACKLOG)
            )
        )
        gateway = Gateway(cfg, SimBackend(SimNetwork(seed=1), GATEWAY_NUMBER), store)
        stop = asyncio.Event()
        runner = asyncio.create_task(gateway.run(stop))
        # Down: nothing listens on the port, so each attempt is a refused connection.
        await asyncio.sleep(2.0)
        attempts_while_down = gateway.progress.failed_attempts
        up = uvicorn.Server(
            uvicorn.Config(
                server, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
            )
        )
        serving = asyncio.create_task(up.serve())
        try:
            async with asyncio.timeout(60):
                while len(server.posts) < BACKLOG:
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await runner
            up.should_exit = True
            await serving
            await store.close()
        return attempts_while_down

    attempts_while_down = asyncio.run(main())
    # A probe every 0.05 to 0.4 s, plus the uploads in flight when the URL went down.
    assert 1 <= attempts_while_down <= 16 + 2.0 / 0.05
    assert len(server.posts) == BACKLOG
    assert set(server.posts.values()) == {1}
