"""The Termux backend against fake ``termux-*`` executables first on PATH (spec §8.4)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from smssync.backends.base import InboundSms
from smssync.backends.termux import TermuxBackend, TermuxOptions
from smssync.errors import BackendError
from smssync.sim import termux_fakes

NAIROBI = timezone(timedelta(hours=3))


@pytest.fixture(params=["new", "old"])
def phone(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake phone with both app versions' JSON; returns its state directory."""
    state = tmp_path / "phone"
    termux_fakes.install(tmp_path / "bin", state, profile=request.param)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("SMSSYNC_TERMUX_STATE", str(state))
    return state


def options(tmp_path: Path, **changes: object) -> TermuxOptions:
    values: dict[str, object] = {
        "poll_interval_s": 0.05,
        "command_timeout_s": 10.0,
        "send_interval_s": 0.0,
        "cursor_file": tmp_path / "cursor",
        "zone": NAIROBI,
    }
    values.update(changes)
    return TermuxOptions(**values)  # type: ignore[arg-type]


async def take(backend: TermuxBackend, count: int, ack: bool = True) -> list[InboundSms]:
    found: list[InboundSms] = []
    stream = backend.events()
    try:
        while len(found) < count:
            event = await asyncio.wait_for(anext(stream), 20)
            assert isinstance(event, InboundSms)
            found.append(event)
            if ack:
                await backend.acknowledge(event)
    finally:
        await stream.aclose()
    return found


async def test_polls_new_sms_by_id_and_the_cursor_survives_a_restart(
    phone: Path, tmp_path: Path
) -> None:
    termux_fakes.add_inbox(phone, "+254711000009", "old, before the gateway", "2025-05-01 09:00:00")
    backend = TermuxBackend(options(tmp_path))
    await backend.open()
    assert backend.capabilities.delivery_reports is False
    first = termux_fakes.add_inbox(phone, "+254711000001", "hi", "2025-05-01 14:03:22", "Alice")
    termux_fakes.add_inbox(phone, "M-PESA", "confirmed", "2025-05-01 14:04:00")
    one, two = await take(backend, 2, ack=False)
    assert (one.from_addr, one.content, one.handle) == ("+254711000001", "hi", str(first))
    assert one.natural_key == f"termux:{first}"
    assert one.sent_at == datetime(2025, 5, 1, 11, 3, 22, tzinfo=UTC)
    assert two.from_addr == "M-PESA"
    await backend.acknowledge(one)
    # Restart before the second was stored: it comes again; the first does not.
    again = TermuxBackend(options(tmp_path))
    await again.open()
    [redo] = await take(again, 1)
    assert redo.natural_key == two.natural_key
    assert (tmp_path / "cursor").read_text().strip() == two.handle


async def test_send_hands_over_text_and_claims_nothing_more(phone: Path, tmp_path: Path) -> None:
    backend = TermuxBackend(options(tmp_path, sim_slot="1"))
    assert backend.options.submitted_is_sent is False
    result = await backend.send("+254700000002", "-starts with a dash, ümlaut", True)
    # Exit 0 only means "handed to Android": no sent code is invented (spec §7).
    assert result.sent_code is None and not result.ok and result.reference is None
    assert termux_fakes.load(phone)["sent"] == [
        {"to": "+254700000002", "text": "-starts with a dash, ümlaut", "slot": "1"}
    ]


async def test_submitted_is_sent_reports_exit_0_as_sent(phone: Path, tmp_path: Path) -> None:
    backend = TermuxBackend(options(tmp_path, submitted_is_sent=True))
    result = await backend.send("+254700000002", "hello", False)
    assert result.sent_code == -1 and result.ok and result.reference is None
    sent = termux_fakes.load(phone)["sent"]
    assert [(s["to"], s["text"]) for s in sent] == [("+254700000002", "hello")]


async def test_status_from_battery_and_the_registered_cell(phone: Path, tmp_path: Path) -> None:
    status = await TermuxBackend(options(tmp_path)).status()
    new = termux_fakes.load(phone)["profile"] == "new"
    assert status.battery_percent == 76 and status.charging is new
    assert (status.signal_dbm, status.signal_level, status.registered) == (-100, 3, True)
    state = termux_fakes.load(phone)
    state["cellinfo"] = []  # Android 10+ without the location permission
    termux_fakes.save(phone, state)
    assert (await TermuxBackend(options(tmp_path)).status()).signal_dbm is None


@pytest.mark.parametrize("submitted_is_sent", [False, True])
@pytest.mark.parametrize("fault", ["exit", "error", "garbage", "empty", "hang"])
async def test_faults_become_backend_errors_or_send_failures(
    phone: Path, tmp_path: Path, fault: str, submitted_is_sent: bool
) -> None:
    state = termux_fakes.load(phone)
    state["faults"] = {"termux-battery-status": fault, "termux-sms-send": fault}
    termux_fakes.save(phone, state)
    backend = TermuxBackend(
        options(tmp_path, command_timeout_s=1.0, submitted_is_sent=submitted_is_sent)
    )
    with pytest.raises(BackendError):
        await backend.status()
    result = await backend.send("+254700000002", "x", False)
    # A send that printed nothing odd and exited 0 is "submitted": sent -1 only when the
    # operator opted in, else no code. Everything else failed, whatever the option (§7).
    submitted = -1 if submitted_is_sent else None
    assert result.sent_code == (submitted if fault in ("empty", "garbage") else 1)


async def test_termux_sms_inbox_is_gone(phone: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="replaced by termux-sms-list"):
        await TermuxBackend(options(tmp_path))._run(["termux-sms-inbox"])
