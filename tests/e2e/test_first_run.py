"""A first run as a new user meets it (issue 17): a Sync URL a phone can reach, a device
shown again and re-keyed, no secret spent on a port that is busy, no silent country."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smssync.reach import lan_address
from tests.e2e.serverproc import Server

FORM = {"content-type": "application/x-www-form-urlencoded"}


def post_sms(url: str, secret: str, sender: str = "%2B254700000001") -> httpx.Response:
    """Post one incoming SMS as the app does."""
    body = f"secret={secret}&from={sender}&message=hi&message_id={uuid.uuid4()}"
    return httpx.post(url, content=body.encode(), headers=FORM, timeout=30)


def accepted(reply: httpx.Response) -> bool:
    """Tell whether the server stored the SMS."""
    return reply.status_code == 200 and reply.json()["payload"]["success"] is True


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Server]:
    """A server's environment on a new SQLite store, not started, with no region given (the
    region kept in either store: tests/integration/test_first_run_store.py)."""
    server = Server(tmp_path, "")
    del server.env["SMSSYNC_DEFAULT_REGION"]
    for name in ("LC_ALL", "LC_TELEPHONE", "LC_ADDRESS"):
        server.env.pop(name, None)
    server.env["LANG"] = "C.UTF-8"
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_busy_port_spends_no_one_time_secret(tmp_path: Path, workers: int) -> None:
    server = Server(tmp_path, workers=workers)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        failed = server.cli("serve", check=False)
    assert failed.returncode != 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in failed.stderr
    assert "Secret" not in failed.stdout + failed.stderr
    assert server.cli_json("device", "list") == []
    # The next start, on a free port, still creates the first device and tells its secret.
    server.start()
    try:
        log = server.log.read_text()
        url, secret = re.search(r"Sync URL: (\S+)", log), re.search(r"Secret:\s+(\S+)", log)
        assert url and secret, log
        assert accepted(post_sms(url[1], secret[1]))
    finally:
        server.stop()


@pytest.mark.skipif(lan_address() is None, reason="this machine has no LAN address")
def test_a_wildcard_server_gives_phones_its_lan_address(tmp_path: Path) -> None:
    lan = lan_address()
    server = Server(tmp_path)
    server.env["SMSSYNC_HOST"] = "0.0.0.0"
    server.start()
    try:
        log = server.log.read_text()
        url, secret = re.search(r"Sync URL: (\S+)", log), re.search(r"Secret:\s+(\S+)", log)
        assert url and secret, log
        assert url[1].startswith(f"http://{lan}:{server.port}/smssync/d/"), log
        assert "WARNING" not in log
        # What the phone is given reaches the server: over the LAN address, not loopback.
        assert accepted(post_sms(url[1], secret[1]))
        # The first screen: `SMSSYNC_HOST=0.0.0.0 smssync device add lanphone --json`.
        added = server.cli("device", "add", "lanphone", "--json")
        assert "WARNING" not in added.stderr
        info = httpx.Response(200, text=added.stdout).json()
        assert info["sync_url"].startswith(f"http://{lan}:{server.port}/")
        assert info["import_payload"]["url"] == info["sync_url"]
        assert accepted(post_sms(info["sync_url"], info["secret"]))
    finally:
        server.stop()


def test_a_loopback_url_is_warned_and_a_public_url_wins(tmp_path: Path) -> None:
    server = Server(tmp_path)  # serves on 127.0.0.1
    server.start()
    try:
        log = server.log.read_text()
        assert re.search(r"WARNING smssync\.server: phones are given http://127\.0\.0\.1", log)
        added = server.cli("device", "add", "local")
        assert "WARNING: phones are given http://127.0.0.1" in added.stderr
        assert "--public-url" in added.stderr
        server.env["SMSSYNC_PUBLIC_URL"] = "https://sms.example.org/"
        public = server.cli("device", "add", "public", "--json")
        assert "WARNING" not in public.stderr
        assert '"sync_url": "https://sms.example.org/smssync/d/' in public.stdout
        server.env["SMSSYNC_PUBLIC_URL"] = "http://localhost:8080"
        assert "WARNING" in server.cli("device", "show", "public").stderr
    finally:
        server.stop()


def test_show_again_and_rotate_the_secret_of_a_running_server(server: Server) -> None:
    info = server.add_device("rekeyed")
    assert accepted(post_sms(info["sync_url"], info["secret"]))  # its lookups now cached
    shown = server.cli_json("device", "show", "rekeyed")
    assert shown["sync_url"] == info["sync_url"]
    assert shown["import_payload"]["url"] == info["sync_url"]
    assert shown["secret"] is None and shown["has_secret"] is True
    text = server.cli("device", "show", "rekeyed").stdout
    assert info["sync_url"] in text and info["secret"] not in text
    assert "cannot be shown again" in text and "rotate-secret rekeyed" in text
    assert "\u2580" in text or "\u2584" in text or "\u2588" in text  # the QR code

    # Polls with the old secret keep the server's cache of the device warm while the CLI,
    # another process, rotates it.
    stop = threading.Event()
    poll = f"{info['sync_url']}?task=send&secret={info['secret']}"

    answers: list[int] = []

    def keep_polling() -> None:
        with httpx.Client(timeout=30) as client:
            # Until refused: more failures would only meet the brake on guessing (429).
            while not stop.is_set() and (not answers or answers[-1] == 200):
                answers.append(client.get(poll).status_code)
                time.sleep(0.05)

    poller = threading.Thread(target=keep_polling)
    poller.start()
    try:
        rotated = server.cli_json("device", "rotate-secret", "rekeyed")
        # At once: the next request already finds the old secret wrong.
        refused = post_sms(info["sync_url"], info["secret"])
    finally:
        stop.set()
        poller.join()
    assert refused.status_code == 403, refused.text
    assert answers.count(200) >= 2 and set(answers) <= {200, 403}
    assert rotated["sync_url"] == info["sync_url"] and rotated["secret"] != info["secret"]
    assert rotated["import_payload"]["secret"] == rotated["secret"]
    assert accepted(post_sms(info["sync_url"], rotated["secret"]))

    moved = server.cli_json("device", "rotate-secret", "rekeyed", "--new-url", "--secret", "x1")
    assert moved["sync_url"] != info["sync_url"] and moved["secret"] == "x1"
    assert post_sms(info["sync_url"], "x1").status_code == 403
    assert accepted(post_sms(moved["sync_url"], "x1"))

    missing = server.cli("device", "show", "nobody", check=False)
    assert missing.returncode == 1 and "no device named 'nobody'" in missing.stderr
    both = server.cli(
        "device", "rotate-secret", "rekeyed", "--secret", "a", "--no-secret", check=False
    )
    assert both.returncode == 2 and "exclude each other" in both.stderr


def test_the_first_run_takes_the_region_from_the_locale_and_says_so(fresh: Server) -> None:
    fresh.env["LANG"] = "en_GB.UTF-8"
    sent = fresh.cli("send", "--to", "020 7946 0958", "Your table is ready")
    assert "default region: GB (+44), from the locale (LANG=en_GB.UTF-8)" in sent.stderr
    assert "read '020 7946 0958' as a number of GB (default region): +442079460958" in sent.stderr
    assert re.fullmatch(r"[0-9a-f-]{36}\n", sent.stdout)  # stdout stays the uuid
    [queued] = fresh.cli_json("messages", "--direction", "out")
    assert queued["to"] == "+442079460958"
    # The server agrees with the CLI, whatever its own locale: the store decided.
    fresh.env["LANG"] = "C.UTF-8"
    fresh.start()
    log = fresh.log.read_text()
    assert "default region: GB (+44), from the store" in log
    url, secret = re.search(r"Sync URL: (\S+)", log), re.search(r"Secret:\s+(\S+)", log)
    assert url and secret, log
    assert accepted(post_sms(url[1], secret[1], sender="07700+900123"))
    [received] = fresh.cli_json("messages")
    assert received["from"] == "+447700900123"
    added = fresh.cli("device", "add", "second")
    assert "default region: GB (+44), from the store" in added.stdout
    assert fresh.cli_json("device", "add", "third")["default_region"] == "GB"


def test_without_a_region_a_national_number_is_refused(fresh: Server) -> None:
    refused = fresh.cli("send", "--to", "020 7946 0958", "hello", check=False)
    assert refused.returncode == 2
    assert "no +country code, and no default region is set" in refused.stderr
    assert "--default-region" in refused.stderr
    assert fresh.cli_json("messages", "--direction", "out") == []
    # Numbers with their country code, and short codes, need no region.
    fresh.cli("send", "--to", "+44 20 7946 0958", "hello")
    fresh.cli("send", "--to", "22141", "balance")
    assert sorted(m["to"] for m in fresh.cli_json("messages", "--direction", "out")) == [
        "+442079460958",
        "22141",
    ]
    # Given once, the region is kept for every later command.
    set_once = fresh.cli("send", "--to", "020 7946 0958", "hi", "--default-region", "gb")
    assert "default region: GB (+44), from the setting" in set_once.stderr
    later = fresh.cli("send", "--to", "020 7946 0959", "hi")
    assert "as a number of GB" in later.stderr
    bad = fresh.cli("send", "--to", "1", "x", "--default-region", "XX", check=False)
    assert bad.returncode == 2 and "default_region (SMSSYNC_DEFAULT_REGION)" in bad.stderr


def test_a_key_revoked_by_the_cli_is_refused_at_once(server: Server) -> None:
    made = server.cli_json("apikey", "create", "--scope", "read", "--name", "revoked")
    headers = {"authorization": f"Bearer {made['key']}"}
    url = server.base + "/api/v1/messages"
    answers: list[int] = []
    stop = threading.Event()

    def keep_reading() -> None:  # the server's cache of the key stays warm
        with httpx.Client(timeout=30) as client:
            while not stop.is_set() and (not answers or answers[-1] == 200):
                answers.append(client.get(url, headers=headers).status_code)
                time.sleep(0.05)

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        server.cli("apikey", "revoke", str(made["id"]))
        refused = httpx.get(url, headers=headers)
    finally:
        stop.set()
        reader.join()
    assert refused.status_code == 401, refused.text
    assert answers.count(200) >= 2 and set(answers) <= {200, 401}
