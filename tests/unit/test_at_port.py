"""The AT port's reader over a scripted byte transport: echo, URCs mid-reply, the prompt."""

from __future__ import annotations

import queue

import pytest

from smssync.backends.at.port import AtError, AtPort


class Scripted:
    """Answers each written command with scripted bytes, in small chunks."""

    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.replies = replies
        self.written: list[bytes] = []
        self._out: queue.Queue[bytes] = queue.Queue()

    def read(self, size: int) -> bytes:
        try:
            return self._out.get(timeout=0.05)
        except queue.Empty:
            return b""

    def write(self, data: bytes) -> None:
        self.written.append(data)
        reply = self.replies.get(data, b"")
        for start in range(0, len(reply), 4):
            self._out.put(reply[start : start + 4])

    def close(self) -> None:
        pass


async def test_urcs_between_echo_and_ok_go_to_the_callback() -> None:
    urcs: list[tuple[str, str | None]] = []
    transport = Scripted(
        {
            b"AT+CSQ\r": b'AT+CSQ\r\r\n+CMTI: "SM",3\r\n\r\n+CSQ: 20,99\r\n'
            b"\r\n+CDS: 25\r\n07910000\r\n\r\nOK\r\n",
            b"AT+CREG?\r": b"\r\n+CREG: 0,1\r\n\r\nOK\r\n",
            b"AT+CMGD=9\r": b"\r\n+CMS ERROR: 321\r\n",
        }
    )
    port = AtPort(transport, lambda line, pdu: urcs.append((line, pdu)))
    try:
        assert await port.command("AT+CSQ") == ["+CSQ: 20,99"]
        # +CREG is a URC prefix too, but here it answers the pending command.
        assert await port.command("AT+CREG?") == ["+CREG: 0,1"]
        with pytest.raises(AtError) as info:
            await port.command("AT+CMGD=9")
        assert (info.value.kind, info.value.code) == ("CMS", 321)
    finally:
        port.close()
    assert urcs == [('+CMTI: "SM",3', None), ("+CDS: 25", "07910000")]


async def test_the_prompt_without_line_end_releases_the_pdu() -> None:
    transport = Scripted(
        {
            b"AT+CMGS=9\r": b"\r\n> ",
            b"0011000A\x1a": b"\r\n+CMGS: 42\r\n\r\nOK\r\n",
        }
    )
    port = AtPort(transport, lambda line, pdu: None)
    try:
        assert await port.command("AT+CMGS=9", data="0011000A") == ["+CMGS: 42"]
    finally:
        port.close()
    assert transport.written == [b"AT+CMGS=9\r", b"0011000A\x1a"]
