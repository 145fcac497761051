"""One breaker per Sync URL: a URL that is down holds back only its own requests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx

from smssync.gateway.breaker import BreakerState
from smssync.gateway.runner import Gateway
from smssync.sim.network import SimNetwork
from tests.unit.test_gateway_runner import GATEWAY_NUMBER, SENDER, FakeServer, config, run, until

URLS = """
[[sync_urls]]
title = "up"
url = "http://up.test/"
[[sync_urls]]
title = "down"
url = "http://down.test/"
"""


@dataclasses.dataclass
class Outage(FakeServer):
    """A server whose port refuses connections while ``down`` is set."""

    down: bool = True
    refused: int = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return super().handler(request)


def state(gateway: Gateway, name: str) -> BreakerState:
    """The breaker of one Sync URL, read afresh (it moves while the test waits)."""
    return gateway.breakers[name].state


def test_a_down_url_trips_its_own_breaker_and_never_holds_back_another(tmp_path: Path) -> None:
    up, down = FakeServer(), Outage()
    cfg = config(tmp_path, "", URLS)
    texts = [f"sms {i}" for i in range(5)]

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        for text in texts:
            await net.deliver(SENDER, GATEWAY_NUMBER, text)
        await until(lambda: state(gateway, "down") is not BreakerState.CLOSED)
        # Every SMS reaches the URL that answers while the other's breaker is open.
        await until(lambda: len(up.stored) == len(texts))
        assert state(gateway, "up") is BreakerState.CLOSED
        assert state(gateway, "down") is not BreakerState.CLOSED
        down.down = False
        await until(lambda: len(down.stored) == len(texts))
        assert state(gateway, "down") is BreakerState.CLOSED

    run(cfg, {"up.test": up, "down.test": down}, scenario)
    assert sorted(p["message"] for p in up.posts) == texts
    assert sorted(p["message"] for p in down.posts) == texts
    assert down.refused >= 3
