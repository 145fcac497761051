"""``smssync sim``: a SimNetwork behind a small HTTP control interface on 127.0.0.1.

Routes (JSON in, JSON out):

    GET  /                      the knobs and the phones
    PUT  /knobs                 change knobs: {"loss": 0.1, ...}
    POST /phones                register a phone: {"number": "+254..."}
    POST /sms                   an SMS from outside: {"from", "to", "text"}
    GET  /outbox                everything the phones sent
    POST /phones/{n}/send       the phone sends: {"to", "text", "report"}
    GET  /phones/{n}/events     long-poll: ?after=<seq>&wait_s=<s>
    POST /phones/{n}/ack        forget a stored event: {"handle"}
    GET  /phones/{n}/status     battery, signal, registration
    PUT  /phones/{n}/status     change them (battery low, no service, ...)
    GET  /phones/{n}/inbox      every SMS the phone received
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smssync.sim.codec import (
    event_to_json,
    result_to_json,
    status_to_json,
    submission_to_json,
)
from smssync.sim.network import SimNetwork

DEFAULT_SIM_PORT = 8090
_STATUS_FIELDS = {"battery_percent", "charging", "signal_dbm", "signal_level", "registered"}


class _BadRequest(Exception):
    pass


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise _BadRequest("body is not JSON") from None
    if not isinstance(data, dict):
        raise _BadRequest("body must be a JSON object")
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _BadRequest(f"{key!r} must be a string")
    return value


def create_control_app(network: SimNetwork) -> Starlette:
    """Build the control server for one network."""

    async def overview(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "knobs": dataclasses.asdict(network.knobs),
                "phones": {n: status_to_json(p.status) for n, p in network.phones.items()},
            }
        )

    async def knobs(request: Request) -> JSONResponse:
        try:
            network.knobs.update(await _body(request))
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        return JSONResponse(dataclasses.asdict(network.knobs))

    async def register(request: Request) -> JSONResponse:
        number = _text(await _body(request), "number")
        network.phone(number)
        return JSONResponse({"number": number})

    async def sms(request: Request) -> JSONResponse:
        data = await _body(request)
        await network.deliver(_text(data, "from"), _text(data, "to"), _text(data, "text"))
        return JSONResponse({"ok": True})

    async def outbox(request: Request) -> JSONResponse:
        return JSONResponse([submission_to_json(s) for s in network.outbox])

    async def send(request: Request) -> JSONResponse:
        data = await _body(request)
        result = await network.submit(
            request.path_params["number"],
            _text(data, "to"),
            _text(data, "text"),
            bool(data.get("report", False)),
        )
        return JSONResponse(result_to_json(result))

    async def events(request: Request) -> JSONResponse:
        phone = network.phone(request.path_params["number"])
        try:
            after = int(request.query_params.get("after", "0"))
            wait_s = min(float(request.query_params.get("wait_s", "0")), 30.0)
        except ValueError:
            raise _BadRequest("after and wait_s must be numbers") from None
        found = await phone.wait(after, wait_s)
        return JSONResponse([event_to_json(seq, event) for seq, event in found])

    async def ack(request: Request) -> JSONResponse:
        phone = network.phone(request.path_params["number"])
        phone.acknowledge(_text(await _body(request), "handle"))
        return JSONResponse({"ok": True})

    async def status(request: Request) -> JSONResponse:
        phone = network.phone(request.path_params["number"])
        if request.method == "PUT":
            changes = await _body(request)
            unknown = set(changes) - _STATUS_FIELDS - {"radio_on"}
            if unknown:
                raise _BadRequest(f"unknown status fields: {', '.join(sorted(unknown))}")
            if "radio_on" in changes:
                phone.radio_on = bool(changes.pop("radio_on"))
            phone.set_status(**changes)
        return JSONResponse({**status_to_json(phone.status), "radio_on": phone.radio_on})

    async def inbox(request: Request) -> JSONResponse:
        phone = network.phone(request.path_params["number"])
        return JSONResponse([event_to_json(0, sms) for sms in phone.received])

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)

    return Starlette(
        routes=[
            Route("/", overview),
            Route("/knobs", knobs, methods=["PUT"]),
            Route("/phones", register, methods=["POST"]),
            Route("/sms", sms, methods=["POST"]),
            Route("/outbox", outbox),
            Route("/phones/{number}/send", send, methods=["POST"]),
            Route("/phones/{number}/events", events),
            Route("/phones/{number}/ack", ack, methods=["POST"]),
            Route("/phones/{number}/status", status, methods=["GET", "PUT"]),
            Route("/phones/{number}/inbox", inbox),
        ],
        exception_handlers={_BadRequest: bad_request},
    )
