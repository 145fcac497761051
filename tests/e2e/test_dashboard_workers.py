"""The dashboard under ``serve --workers 2``: a session made by one worker holds in the
other, and the live feed reads the store, so it sees what either worker wrote."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.e2e.browser import admin_password, first_phone, incoming
from tests.e2e.serverproc import Server

NUMBER = "+254700000201"


def test_sessions_and_the_live_feed_span_workers(tmp_path: Path) -> None:
    server = Server(tmp_path, workers=2)
    server.start()
    try:
        phone = first_phone(server)
        with httpx.Client(base_url=server.base, timeout=30) as browser:
            form = browser.get("/dashboard/signin")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token
            signed = browser.post(
                "/dashboard/signin",
                data={"csrf": token[1], "name": "admin", "password": admin_password(server)},
            )
            assert signed.status_code == 303
            page = browser.get(f"/dashboard/conversations/{NUMBER}")
            cursors = dict(re.findall(r'data-after-(in|hist)="(\d+)"', page.text))
            # Fresh connections spread over both workers: every one knows the session.
            for _ in range(8):
                with httpx.Client(base_url=server.base, cookies=browser.cookies) as other:
                    assert other.get("/dashboard/phones").status_code == 200
            incoming(phone, NUMBER, "seen by every worker")
            for _ in range(4):
                with httpx.Client(base_url=server.base, cookies=browser.cookies) as other:
                    feed = other.get(
                        f"/dashboard/conversations/{NUMBER}/changes",
                        params={"after_in": cursors["in"], "after_hist": cursors["hist"]},
                    ).json()
                    assert [i["key"][:3] for i in feed["items"]] == ["in-"]
                    assert "seen by every worker" in feed["items"][0]["html"]
    finally:
        server.stop()
