"""Texts from outside are data in the CLI's tables, never Rich markup (issue 14, finding 11).

Through the real ``smssync`` command (click's runner) on a real store: an incoming SMS that
says ``[/]`` once crashed ``smssync messages`` with ``MarkupError``, and ``[a]`` vanished.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner, Result

from smssync.cli import main
from tests.integration.api_helpers import bearer, incoming, phone

TEXTS = ["[a]", "[/]", "[bold]x", "[link=http://evil]y", ":smile:"]


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    return result


async def test_messages_and_devices_print_texts_as_they_are(
    api_client: httpx.AsyncClient,
    store_url: str,
    store: Any,
    keys: dict[str, str],
    tmp_path: Path,
) -> None:
    url = await phone(store, name="[red]p1")
    for i, text in enumerate(TEXTS):
        await incoming(api_client, url, "+254700000001", text, f"m{i}")
        reply = await api_client.post(
            "/api/v1/messages",
            json={"to": "+254700000001", "body": text},
            headers=bearer(keys["send"]),
        )
        assert reply.status_code == 201, reply.text
    # The CLI runs its own event loop; its data folder (where the server key goes) is the
    # test's own, not the working directory.
    where = ("--database-url", store_url, "--data-dir", str(tmp_path))
    incoming_list = await anyio.to_thread.run_sync(run, "messages", *where, "--direction", "in")
    outgoing_list = await anyio.to_thread.run_sync(run, "messages", *where, "--direction", "out")
    devices = await anyio.to_thread.run_sync(run, "device", "list", *where)
    for text in TEXTS:
        assert text in incoming_list.output
        assert text in outgoing_list.output
    assert "[red]p1" in devices.output


def test_sim_outbox_prints_texts_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    # The simulated network's control interface is replaced by what it would answer.
    rows = [
        {"seq": i, "from": "[b]", "to": "+254700000001", "text": text, "sent_code": -1}
        | {"delivered_code": None}
        for i, text in enumerate(TEXTS)
    ]
    monkeypatch.setattr("smssync.cli.sim._call", lambda *args, **kwargs: rows)
    output = run("sim", "outbox").output
    for text in TEXTS:
        assert text in output
    assert "[b]" in output
