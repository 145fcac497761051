"""Fake ``termux-*`` executables for tests and demos (spec §8.4).

``install(bin_dir, state_dir)`` writes one small shim per command into ``bin_dir``; put it
first on ``PATH``. Each shim runs ``python -m smssync.sim.termux_fakes <command> ...``, which
reads and writes ``state.json`` in the directory ``SMSSYNC_TERMUX_STATE`` names:

    {"profile": "new" | "old", "inbox": [{"_id", "address", "body", "received", ...}],
     "sent": [{"to", "text", "slot"}], "battery": {...}, "cellinfo": [...],
     "deviceinfo": {...}, "faults": {"<command>": "hang" | "exit" | "error" | "garbage" |
     "empty"}}

With ``SMSSYNC_TERMUX_SIM`` set to ``<control URL>|<own number>``, termux-sms-send also
hands the SMS to the simulated network that ``smssync sim`` serves.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

COMMANDS = (
    "termux-sms-send",
    "termux-sms-list",
    "termux-sms-inbox",
    "termux-battery-status",
    "termux-telephony-cellinfo",
    "termux-telephony-deviceinfo",
)
BATTERY_NEW = {
    "present": True,
    "technology": "Li-ion",
    "health": "GOOD",
    "plugged": "PLUGGED_USB",
    "status": "CHARGING",
    "temperature": 27.5,
    "voltage": 4100,
    "current": 350000,
    "current_average": 340000,
    "percentage": 76,
    "level": 76,
    "scale": 100,
    "charge_counter": 2500000,
}
BATTERY_OLD = {
    "health": "GOOD",
    "percentage": 76,
    "plugged": "UNPLUGGED",
    "status": "DISCHARGING",
    "temperature": 27.0,
    "current": -250000,
}
CELLINFO_LTE = [
    {
        "type": "lte",
        "registered": True,
        "asu": 40,
        "dbm": -100,
        "level": 3,
        "ci": 12345,
        "pci": 301,
        "tac": 4101,
        "mcc": 639,
        "mnc": 2,
        "timing_advance": 2,
        "rsrp": -100,
        "rsrq": -9,
        "rssi": -71,
        "bands": [3],
    },
    {"type": "lte", "registered": False, "asu": 20, "dbm": -120, "level": 1},
]
DEVICEINFO = {
    "data_enabled": "true",
    "data_activity": "none",
    "data_state": "connected",
    "phone_count": 1,
    "phone_type": "gsm",
    "network_operator": "63902",
    "network_operator_name": "Safaricom",
    "network_country_iso": "ke",
    "network_type": "lte",
    "network_roaming": False,
    "sim_country_iso": "ke",
    "sim_operator": "63902",
    "sim_operator_name": "Safaricom",
    "sim_state": "ready",
}


def new_state(profile: str = "new") -> dict[str, Any]:
    """Return a fresh phone: empty inbox, status JSON of the profile's app version."""
    return {
        "profile": profile,
        "inbox": [],
        "sent": [],
        "battery": BATTERY_NEW if profile == "new" else BATTERY_OLD,
        "cellinfo": CELLINFO_LTE,
        "deviceinfo": DEVICEINFO,
        "faults": {},
    }


def install(bin_dir: Path, state_dir: Path, profile: str = "new") -> None:
    """Write the shims and a fresh ``state.json`` (kept if one exists)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = state_dir / "state.json"
    if not state_file.exists():
        save(state_dir, new_state(profile))
    for name in COMMANDS:
        shim = bin_dir / name
        shim.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -m smssync.sim.termux_fakes {name} "$@"\n'
        )
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def load(state_dir: Path) -> dict[str, Any]:
    """Read a phone's state."""
    data: dict[str, Any] = json.loads((state_dir / "state.json").read_text())
    return data


def save(state_dir: Path, state: dict[str, Any]) -> None:
    """Write a phone's state atomically."""
    tmp = state_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1, ensure_ascii=False))
    tmp.replace(state_dir / "state.json")


def add_inbox(
    state_dir: Path, address: str, body: str, received: str, sender: str | None = None
) -> int:
    """Put an SMS in the phone's inbox, as Android would; return its ``_id``."""
    state = load(state_dir)
    row_id = max((row["_id"] for row in state["inbox"]), default=100) + 1
    row: dict[str, Any] = {
        "threadid": 1,
        "type": "inbox",
        "read": False,
        "address": address,
        "number": address,
        "received": received,
        "body": body,
        "_id": row_id,
    }
    if sender:
        row["sender"] = sender
    state["inbox"].append(row)
    save(state_dir, state)
    return row_id


def _rows(state: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = [r for r in state["inbox"] if args.t in ("all", "inbox")]
    if args.f and not args.selection:
        rows = [r for r in rows if r.get("address") == args.f]
    if args.selection:
        # Only the form the backend uses: "_id > N".
        rows = [r for r in rows if r["_id"] > int(args.selection.split(">")[1])]
    rows.sort(key=lambda r: r["_id"], reverse=True)  # date DESC
    page = rows[args.o : args.o + args.l]
    page.reverse()  # printed oldest first
    if state["profile"] == "old":
        page = [{k: v for k, v in r.items() if k != "address"} for r in page]
    return page


def _send_to_network(to_addr: str, text: str) -> None:
    target = os.environ.get("SMSSYNC_TERMUX_SIM")
    if not target:
        return
    import urllib.parse

    import httpx

    url, _, number = target.partition("|")
    path = f"/phones/{urllib.parse.quote(number, safe='')}/send"
    httpx.post(url.rstrip("/") + path, json={"to": to_addr, "text": text, "report": False})


def main(argv: list[str]) -> int:
    """Run one fake command; the state directory comes from SMSSYNC_TERMUX_STATE."""
    command, rest = argv[0], argv[1:]
    state_dir = Path(os.environ["SMSSYNC_TERMUX_STATE"])
    state = load(state_dir)
    fault = state.get("faults", {}).get(command)
    if fault == "hang":
        time.sleep(3600)
    if fault == "exit":
        print("Termux:API is not running", file=sys.stderr)
        return 1
    if fault in ("error", "garbage", "empty"):
        out = {"error": '{"error": "permission denied"}', "garbage": "<html>", "empty": ""}
        print(out[fault])
        return 0
    if command == "termux-sms-inbox":
        print("termux-sms-inbox has been replaced by termux-sms-list", file=sys.stderr)
        return 1
    if command == "termux-sms-list":
        parser = argparse.ArgumentParser(prog=command)
        parser.add_argument("-t", default="all")
        parser.add_argument("-l", type=int, default=10)
        parser.add_argument("-o", type=int, default=0)
        parser.add_argument("-f", default="")
        if state["profile"] == "new":
            parser.add_argument("--message-selection", dest="selection", default="")
        args = parser.parse_args(rest)
        if state["profile"] != "new":
            args.selection = ""
        print(json.dumps(_rows(state, args), indent=2))
        return 0
    if command == "termux-sms-send":
        parser = argparse.ArgumentParser(prog=command)
        parser.add_argument("-n", required=True)
        parser.add_argument("-s", default="")
        parser.add_argument("text", nargs="*")
        args = parser.parse_args(rest)
        text = " ".join(args.text) if args.text else sys.stdin.read()
        for to_addr in args.n.split(","):
            state["sent"].append({"to": to_addr, "text": text, "slot": args.s})
            _send_to_network(to_addr, text)
        save(state_dir, state)
        return 0
    key = {
        "termux-battery-status": "battery",
        "termux-telephony-cellinfo": "cellinfo",
        "termux-telephony-deviceinfo": "deviceinfo",
    }[command]
    print(json.dumps(state[key], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
