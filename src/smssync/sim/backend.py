"""The simulated backend: one phone of a SimNetwork, in this process or behind ``smssync sim``."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from smssync.backends.base import (
    BackendEvent,
    Capabilities,
    DeviceStatus,
    SendResult,
)
from smssync.errors import BackendError
from smssync.sim.codec import event_from_json, result_from_json, status_from_json
from smssync.sim.network import SimNetwork

SIM_CAPABILITIES = Capabilities(delivery_reports=True, battery=True, signal=True)
#: How long one long-poll of the control server waits for events.
LONG_POLL_S = 10.0


class SimBackend:
    """A phone of an in-process SimNetwork."""

    capabilities = SIM_CAPABILITIES

    def __init__(self, network: SimNetwork, number: str, poll_s: float = 1.0) -> None:
        self.network = network
        self.number = number
        self.phone = network.phone(number)
        self._poll_s = poll_s

    @property
    def own_number(self) -> str | None:
        """Return the simulated SIM's number."""
        return self.number

    async def open(self) -> None:
        """Nothing to connect: the phone exists once the network knows it."""

    async def close(self) -> None:
        """Nothing to release."""

    async def send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        """Submit through the simulated SMSC."""
        return await self.network.submit(self.number, to_addr, content, request_report)

    async def events(self) -> AsyncGenerator[BackendEvent, None]:
        """Yield every unacknowledged event, then new ones as they arrive."""
        cursor = 0
        while True:
            for seq, event in await self.phone.wait(cursor, self._poll_s):
                cursor = max(cursor, seq)
                yield event

    async def acknowledge(self, event: BackendEvent) -> None:
        """Delete the event from the simulated phone."""
        self.phone.acknowledge(event.handle)

    async def status(self) -> DeviceStatus:
        """Return the phone's settable status."""
        return self.phone.status


class RemoteSimBackend:
    """A phone of the network that ``smssync sim`` serves, reached over HTTP."""

    capabilities = SIM_CAPABILITIES

    def __init__(
        self, base_url: str, number: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.number = number
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=LONG_POLL_S + 10, transport=transport
        )

    @property
    def own_number(self) -> str | None:
        """Return the simulated SIM's number."""
        return self.number

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendError(f"simulated network unreachable: {exc!r}") from None
        if response.status_code >= 400:
            raise BackendError(f"simulated network said {response.status_code}: {response.text}")
        return response.json()

    def _path(self, tail: str) -> str:
        return f"/phones/{urllib.parse.quote(self.number, safe='')}{tail}"

    async def open(self) -> None:
        """Register this phone with the network."""
        await self._call("POST", "/phones", json={"number": self.number})

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        """Submit through the remote SMSC; an unreachable network is a generic failure."""
        try:
            data = await self._call(
                "POST",
                self._path("/send"),
                json={"to": to_addr, "text": content, "report": request_report},
            )
        except BackendError as exc:
            raise BackendError(exc.message, sent_code=1) from None
        return result_from_json(data)

    async def events(self) -> AsyncGenerator[BackendEvent, None]:
        """Long-poll the control server for events newer than the last one seen."""
        cursor = 0
        while True:
            data = await self._call(
                "GET", self._path("/events"), params={"after": cursor, "wait_s": LONG_POLL_S}
            )
            for item in data:
                seq, event = event_from_json(item)
                cursor = max(cursor, seq)
                yield event

    async def acknowledge(self, event: BackendEvent) -> None:
        """Delete the event from the remote phone."""
        await self._call("POST", self._path("/ack"), json={"handle": event.handle})

    async def status(self) -> DeviceStatus:
        """Return the remote phone's status."""
        return status_from_json(await self._call("GET", self._path("/status")))
