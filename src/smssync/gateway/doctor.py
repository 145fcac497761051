"""``smssync gateway doctor``: what works and what does not, each failure with a hint."""

from __future__ import annotations

import dataclasses

import httpx

from smssync.backends.base import Backend
from smssync.errors import SmssyncError
from smssync.gateway.client import SyncClient
from smssync.gateway.config import GatewayConfig


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool | None  # None: not applicable / unknown, not a failure
    detail: str
    hint: str = ""


_DEVICE_HINTS = {
    "at": "check [backend.at] port (use /dev/serial/by-id/...), that your user is in the "
    "dialout group, and that ModemManager leaves the port alone (docs/deploy.md)",
    "termux": "run `pkg install termux-api`, install the Termux:API app from F-Droid, grant "
    "its permissions and exempt it from battery optimisation (docs/devices.md)",
    "gammu": "pip install 'smssync[gammu]' and check the gammurc file (`gammu identify`)",
    "sim": "start the simulated network: smssync sim",
}


async def probe_backend(kind: str, backend: Backend) -> list[Check]:
    """Open the backend and read SIM, registration, signal and battery."""
    try:
        await backend.open()
    except SmssyncError as exc:
        return [Check("device", False, exc.message, _DEVICE_HINTS.get(kind, ""))]
    checks = [Check("device", True, f"{kind} backend opened"), Check("SIM", True, "ready")]
    try:
        status = await backend.status()
    except SmssyncError as exc:
        await _close(backend)
        return [*checks, Check("status", False, exc.message, "the device answers but not fully")]
    checks.append(
        Check(
            "registration",
            status.registered,
            "registered" if status.registered else "not registered",
            "" if status.registered else "check the SIM's credit and coverage, and the antenna",
        )
    )
    if not backend.capabilities.signal or status.signal_dbm is None:
        checks.append(
            Check(
                "signal",
                None,
                "unknown",
                "Android 10+ needs the location permission" if kind == "termux" else "",
            )
        )
    else:
        weak = (status.signal_level or 0) < 1
        checks.append(
            Check(
                "signal",
                not weak,
                f"{status.signal_dbm} dBm ({status.signal_level}/4)",
                "move the modem or add an antenna" if weak else "",
            )
        )
    if not backend.capabilities.battery or status.battery_percent is None:
        checks.append(Check("battery", None, "none reported (normal for USB modems)"))
    else:
        charging = "" if status.charging is None else (", charging" if status.charging else "")
        checks.append(Check("battery", True, f"{status.battery_percent}%{charging}"))
    reports = backend.capabilities.delivery_reports
    checks.append(
        Check(
            "delivery reports",
            None,
            "supported" if reports else "not available: the Results API reports sent codes only",
        )
    )
    await _close(backend)
    return checks


async def _close(backend: Backend) -> None:
    try:
        await backend.close()
    except SmssyncError:
        pass


async def probe_urls(
    config: GatewayConfig, transport: httpx.AsyncBaseTransport | None = None
) -> list[Check]:
    """Send the App's test request (E3) to each Sync URL: reachable, then secret accepted.

    No task poll: in handoff mode a poll would take SMS off the server that nobody sends.
    """
    checks: list[Check] = []
    for url in config.enabled_urls:
        client = SyncClient(
            url, config.device.user_agent, config.forward.timeout_s, transport=transport
        )
        try:
            await client.test_integration()
            checks.append(Check(f"{url.name}: reachable", True, "answered"))
            checks.append(Check(f"{url.name}: secret", True, "accepted"))
        except SmssyncError as exc:
            # "HTTP <status>" means the server answered: reachable, but it said no.
            answered = "HTTP " in exc.message
            checks.append(
                Check(
                    f"{url.name}: reachable",
                    answered,
                    "answered" if answered else exc.message,
                    "" if answered else "check the URL, DNS and firewall; try it with curl",
                )
            )
            if answered:
                checks.append(
                    Check(
                        f"{url.name}: secret",
                        False,
                        exc.message,
                        "the secret in gateway.toml must match the server's for this device",
                    )
                )
        finally:
            await client.close()
    return checks


def render(checks: list[Check]) -> str:
    """Format the report: one line per check, hints indented below failures."""
    marks = {True: "ok  ", False: "FAIL", None: "--  "}
    lines = []
    for check in checks:
        lines.append(f"[{marks[check.ok]}] {check.name}: {check.detail}")
        if check.ok is False and check.hint:
            lines.append(f"       hint: {check.hint}")
    return "\n".join(lines)
