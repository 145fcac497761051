"""The whole gateway on an emulated modem: SMS in through +CMTI, task SMS out through
AT+CMGS, delivery reports back into ``task=result`` (pty, pyserial, the real runner)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest

from smssync.backends.at import AtBackend
from smssync.gateway.runner import Gateway
from smssync.gateway.store import GatewayStore
from smssync.protocol import results
from smssync.records import TaskMessage
from smssync.sim.backend import SimBackend
from smssync.sim.modem import ModemEmulator
from smssync.sim.network import SimNetwork
from tests.integration.test_at_modem import LONG, fast
from tests.unit.test_gateway_runner import GATEWAY_NUMBER, SENDER, FakeServer, config, until

pytest.importorskip("serial")

TASK = "11111111-1111-4111-8111-111111111111"


async def test_gateway_on_an_emulated_modem(tmp_path: Path) -> None:
    server = FakeServer(
        secret="s",
        queue=[TaskMessage("+254744000001", LONG, TASK)],
        result_uuids=[TASK],
    )
    cfg = config(
        tmp_path, urls='[[sync_urls]]\ntitle = "main"\nurl = "http://server.test/s"\nsecret = "s"\n'
    )
    net = SimNetwork(seed=1)
    emulator = ModemEmulator(SimBackend(net, GATEWAY_NUMBER, poll_s=0.05), tmp_path)
    await emulator.start()
    store = GatewayStore(Path(cfg.store))
    await store.open()
    gateway = Gateway(
        cfg,
        AtBackend(fast(emulator.path)),
        store,
        transport=httpx.MockTransport(server.handler),
        rng=random.Random(3),
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(gateway.run(stop))
    try:
        await net.deliver(SENDER, GATEWAY_NUMBER, LONG)
        await until(lambda: len(server.stored) == 1, 15)
        await until(
            lambda: any(
                e.delivered_code == -1
                for r in server.result_reports
                for e in results.parse_result_request(r)
            ),
            15,
        )
    finally:
        stop.set()
        await runner
        await store.close()
        await emulator.stop()
    [posted] = server.stored.values()
    assert (posted["from"], posted["message"]) == (SENDER, LONG)
    sent = [s for s in net.outbox if s.from_addr == GATEWAY_NUMBER]
    assert [(s.to_addr, s.content) for s in sent] == [("+254744000001", LONG)]
    assert emulator.state.memories["SM"] == {}, "stored SMS and reports deleted after storing"
