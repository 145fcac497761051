"""``smssync gateway doctor``: what works and what does not, each failure with a hint."""

from __future__ import annotations

import dataclasses

import httpx

from smssync.backends.base import Backend
from smssync.errors import DriverMissing, PinNeeded, PinRejected, PukNeeded, SimLocked, SmssyncError
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
    "gammu": "check the gammurc file (`gammu --config gammurc identify`)",
    "sim": "start the simulated network: smssync sim",
}
#: The project is on no package index: the extra comes from the checkout or a built wheel.
_INSTALL = (
    "install the extra smssync[{extra}]: in the git checkout, pip install -e '.[{extra}]'; "
    "from a built wheel, pip install 'smssync-<version>-py3-none-any.whl[{extra}]'"
)
_SIM_HINTS: dict[type[SimLocked], str] = {
    PinNeeded: 'the SIM asks for its PIN: set [backend.at] pin = "<PIN>" in gateway.toml '
    "(the gateway enters it once), or turn the PIN lock off in a phone",
    PinRejected: "the PIN in [backend.at] pin is wrong; it was entered once and is never "
    "retried, because a SIM locks after 3 wrong PINs: check it in a phone, fix the config, "
    "then run doctor again",
    PukNeeded: "the SIM is locked after too many wrong PINs: unlock it with its PUK (from "
    "the operator) in a phone, then check [backend.at] pin",
}


def install_hint(extra: str) -> str:
    """Say how to install ``smssync[extra]`` without a package index."""
    return _INSTALL.format(extra=extra)


def _open_failed(kind: str, exc: SmssyncError) -> list[Check]:
    """Say what went wrong opening the device, with what to do for that cause."""
    if isinstance(exc, DriverMissing):
        return [Check("driver", False, exc.message, install_hint(exc.extra))]
    if isinstance(exc, SimLocked):
        hint = _SIM_HINTS.get(type(exc), "unlock the SIM in a phone")
        return [
            Check("device", True, f"{kind} backend answers"),
            Check("SIM", False, exc.message, hint),
        ]
    return [Check("device", False, exc.message, _DEVICE_HINTS.get(kind, ""))]


async def probe_backend(kind: str, backend: Backend) -> list[Check]:
    """Open the backend and read SIM, registration, service centre, signal and battery."""
    try:
        await backend.open()
    except SmssyncError as exc:
        return _open_failed(kind, exc)
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
    if status.service_centre is not None:
        checks.append(_service_centre(status.service_centre))
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


def _service_centre(number: str) -> Check:
    if number:
        return Check("service centre", True, number)
    return Check(
        "service centre",
        False,
        "none on the SIM: every send fails (+CMS ERROR: 330)",
        'set [backend.at] smsc = "+<number>" in gateway.toml to your operator\'s SMS service '
        "centre (the operator publishes it; a phone with this SIM shows it)",
    )


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
