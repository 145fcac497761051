"""The simulated network: results, references, reports, knobs, and its control interface."""

from __future__ import annotations

import asyncio

import httpx

from smssync.backends.base import DELIVERED_NOT, DELIVERED_OK, DeliveryReport, InboundSms
from smssync.sim.backend import RemoteSimBackend
from smssync.sim.control import create_control_app
from smssync.sim.network import Knobs, SimNetwork


def test_submit_delivers_and_reports() -> None:
    async def main() -> None:
        net = SimNetwork()
        result = await net.submit("+1000", "+2000", "hi", request_report=True)
        assert result.ok and result.reference == "0"
        [(_, sms)] = net.phone("+2000").pending_after(0)
        assert isinstance(sms, InboundSms) and sms.from_addr == "+1000"
        [(_, report)] = net.phone("+1000").pending_after(0)
        assert isinstance(report, DeliveryReport) and report.delivered_code == DELIVERED_OK

    asyncio.run(main())


def test_knobs_failures_and_radio_states() -> None:
    async def main() -> None:
        net = SimNetwork(Knobs(send_failure=1.0, send_failure_code=4))
        assert (await net.submit("+1", "+2", "x", False)).sent_code == 4
        net.knobs.update({"send_failure": 0})
        net.phone("+1").radio_on = False
        assert (await net.submit("+1", "+2", "x", False)).sent_code == 2
        net.phone("+1").radio_on = True
        net.phone("+1").set_status(registered=False)
        assert (await net.submit("+1", "+2", "x", False)).sent_code == 4
        net.phone("+1").set_status(registered=True)
        net.knobs.update({"auto_register": False})
        await net.submit("+1", "+9", "x", True)
        [(_, report)] = net.phone("+1").pending_after(0)
        assert isinstance(report, DeliveryReport) and report.delivered_code == DELIVERED_NOT

    asyncio.run(main())


def test_events_stay_until_acknowledged_over_the_control_interface() -> None:
    async def main() -> None:
        net = SimNetwork(Knobs(duplicate=1.0))
        transport = httpx.ASGITransport(app=create_control_app(net))
        backend = RemoteSimBackend("http://sim", "+254700000100", transport=transport)
        await backend.open()
        await net.deliver("+254711000001", "+254700000100", "hello")
        events = backend.events()
        first, second = await anext(events), await anext(events)
        assert isinstance(first, InboundSms) and isinstance(second, InboundSms)
        assert first.natural_key == second.natural_key and first.handle != second.handle
        await backend.acknowledge(first)
        assert [e.handle for _, e in net.phone("+254700000100").pending_after(0)] == [second.handle]
        result = await backend.send("+254722000002", "out", True)
        assert result.ok and result.reference is not None
        assert (await backend.status()).battery_percent == 100
        await events.aclose()
        await backend.close()

    asyncio.run(main())
