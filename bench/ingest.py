"""Incoming-SMS (E1) throughput: smssync versus the PHP sample of the SMSsync docs.

Both servers get the same wrk load: POSTs of E1 form bodies, each with a unique ``message_id``,
from ``--connections`` connections for ``--duration`` seconds. Rounds alternate (PHP, smssync,
PHP, smssync, ...) so that both see the same machine state; the table shows every round, the
medians and the ratio smssync/PHP. Afterwards the smssync store is read back: it must hold
exactly the requests wrk saw answered with 200 (plus at most the requests still in flight when
wrk stopped, which the server may finish after wrk hung up), with no duplicate and no foreign
message id.

Run: ``.venv/bin/python bench/ingest.py [--duration 10] [--rounds 3] [--connections 32]
[--store sqlite|postgres|both]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import (
    ROOT,
    SmssyncServer,
    ensure_tools,
    free_port,
    log,
    machine_line,
    median,
    pg_database,
    stop_process,
    table,
    tail,
    wait_http,
)

from smssync.store import inbox

PHP_SAMPLE = ROOT / "tests" / "e2e" / "fixtures" / "php_sample" / "index.php"
#: The secret the PHP sample compares against (``$secret == '123456'`` in its get_message()).
PHP_SECRET = "123456"
SMSSYNC_SECRET = "bench-secret-" + secrets.token_hex(4)

#: wrk script: every request is an E1 form body with a unique, UUID-shaped message_id built
#: from a per-round nonce, the thread number, a per-thread counter and random bits. It counts
#: what it sent and what came back per status, so done() can print exact figures.
LUA = r"""
local nonce = "%(nonce)s"
local secret = "%(secret)s"
local threads = {}
-- Globals, not locals: setup() sets tid with thread:set, done() reads the counts with get.
counter = 0
sent = 0
tid = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(os.time() + tid * 7919 + os.clock() * 1000000)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["User-Agent"] = "SMSSync-Android/v3.1.1"
end

function request()
  counter = counter + 1
  sent = sent + 1
  -- 8-4-4-4-12 hex: nonce, thread, version nibble + random, random, counter.
  local id = string.format("%%s-%%04x-4%%03x-%%04x-%%012x",
    nonce, tid %% 65536, math.random(0, 4095), math.random(32768, 49151), counter)
  local body = "secret=" .. secret
    .. "&from=%%2B2547" .. string.format("%%08d", math.random(0, 99999999))
    .. "&message=Hello%%20world%%20" .. counter
    .. "&sent_timestamp=1487658999000&sent_to=&message_id=" .. id .. "&device_id=bench"
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local s = 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
  end
  io.write(string.format("BENCH sent=%%d\n", s))
end
"""


@dataclasses.dataclass
class WrkResult:
    """What one wrk run reports."""

    rps: float
    requests: int
    non2xx: int
    socket_errors: str
    sent: int
    answered: int
    ok200: int
    latency_avg: str
    raw: str


def run_wrk(url: str, script: Path, duration: int, connections: int, threads: int) -> WrkResult:
    """Run wrk once and parse its report."""
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{text}")
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", text, "0"))
    requests = int(_find(r"(\d+) requests in", text, "0"))
    non2xx = int(_find(r"Non-2xx or 3xx responses:\s+(\d+)", text, "0"))
    errors = _find(r"Socket errors:\s+(.*)", text, "none").strip()
    latency = _find(r"Latency\s+(\S+)", text, "?")
    # No response() callback in the script: it makes wrk hand every reply to Lua, and on two
    # cores the load generator then takes CPU from the server it measures. wrk's own counts
    # say how many replies came back and how many were not 2xx (E1 answers 200 or an error).
    sent = int(_find(r"BENCH sent=(\d+)", text, "0"))
    answered, ok200 = requests, requests - non2xx
    return WrkResult(rps, requests, non2xx, errors, sent, answered, ok200, latency, text)


def socket_errors(results: list[WrkResult]) -> str:
    """Sum wrk's socket errors over rounds, naming only the non-zero kinds."""
    totals: dict[str, int] = {}
    for result in results:
        for kind, count in re.findall(r"(\w+) (\d+)", result.socket_errors):
            totals[kind] = totals.get(kind, 0) + int(count)
    return ", ".join(f"{k} {v}" for k, v in totals.items() if v) or "0"


def _find(pattern: str, text: str, default: str) -> str:
    match = re.search(pattern, text)
    return match.group(1) if match else default


def write_script(folder: Path, secret: str) -> tuple[Path, str]:
    """Write a wrk script with a fresh nonce; return it and the nonce."""
    nonce = secrets.token_hex(4)
    path = folder / f"e1-{nonce}.lua"
    path.write_text(LUA % {"nonce": nonce, "secret": secret})
    return path, nonce


class PhpServer:
    """The PHP sample on ``php -S`` with PHP_CLI_SERVER_WORKERS, served from a scratch copy."""

    def __init__(self, workdir: Path, workers: int) -> None:
        self.docroot = workdir / "php"
        self.docroot.mkdir(parents=True)
        shutil.copy(PHP_SAMPLE, self.docroot / "index.php")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.workers = workers
        self.logfile = workdir / "php.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start php -S and wait until it answers."""
        env = {**os.environ, "PHP_CLI_SERVER_WORKERS": str(self.workers)}
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen(
                ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(self.docroot)],
                env=env,
                cwd=self.docroot,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_http(self.url, self.proc, self.logfile)

    def stop(self) -> None:
        """Stop php -S."""
        stop_process(self.proc)
        self.proc = None

    def stored_lines(self) -> int:
        """Return how many messages the sample appended to its test.txt."""
        path = self.docroot / "test.txt"
        if not path.exists():
            return 0
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.startswith(b"Messages Id:"))


@dataclasses.dataclass
class Target:
    """One server under load in the alternating rounds."""

    label: str
    url: str
    secret: str
    results: list[WrkResult] = dataclasses.field(default_factory=list)
    nonces: list[str] = dataclasses.field(default_factory=list)


async def stored_ids(store_url: str) -> list[str]:
    """Read every stored incoming message_id back through the store API, page by page."""
    from smssync.store import open_store

    store = open_store(store_url)
    await store.open()
    ids: list[str] = []
    try:
        after = 0
        while True:
            page = await inbox.list_inbound(store, limit=50000, after_id=after)
            if not page:
                break
            ids.extend(m.message_id or "" for m in page)
            after = page[-1].id
    finally:
        await store.close()
    return ids


def verify(target: Target, server: SmssyncServer) -> tuple[bool, str]:
    """Check that the store holds exactly what was answered 200, once each."""
    ids = asyncio.run(stored_ids(server.store_url))
    ok200 = sum(r.ok200 for r in target.results)
    in_flight = sum(r.sent - r.answered for r in target.results)
    unique = len(set(ids))
    foreign = [i for i in ids if not any(i.startswith(n + "-") for n in target.nonces)]
    dupes = len(ids) - unique
    stored = len(ids)
    exact = stored == ok200
    ok = dupes == 0 and not foreign and ok200 <= stored <= ok200 + in_flight
    verdict = "OK" if ok else "MISMATCH"
    detail = (
        f"{target.label}: stored {stored} rows, wrk saw {ok200} answered 200"
        f" ({'exactly equal' if exact else f'difference {stored - ok200:+d}'});"
        f" requests in flight when wrk stopped: {in_flight}; duplicates: {dupes};"
        f" ids not sent by this run: {len(foreign)} -> {verdict}"
    )
    return ok, detail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="server processes, both sides")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="sqlite")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 50 or not 1 <= args.duration <= 600:
        parser.error("--rounds must be 1..50 and --duration 1..600")
    ensure_tools({"wrk": "wrk", "php": "php-cli"})
    if not PHP_SAMPLE.exists():
        raise SystemExit(f"missing {PHP_SAMPLE.relative_to(ROOT)}")

    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    with (
        tempfile.TemporaryDirectory(prefix="smssync-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        php = PhpServer(work, args.workers)
        stack.callback(php.stop)
        php.start()
        targets: list[Target] = [Target("php-sample", php.url, PHP_SECRET)]
        servers: dict[str, SmssyncServer] = {}
        for store in stores:
            folder = work / store
            folder.mkdir()
            url = stack.enter_context(pg_database("smssync_bench")) if store == "postgres" else ""
            server = SmssyncServer(folder, url, workers=args.workers)
            device = server.add_device("bench", SMSSYNC_SECRET)
            stack.callback(server.stop)
            server.start()
            label = f"smssync-{store}"
            servers[label] = server
            targets.append(Target(label, device["sync_url"], SMSSYNC_SECRET))

        log(
            f"{args.rounds} rounds x {len(targets)} servers x {args.duration}s,"
            f" {args.connections} connections, {args.threads} wrk threads"
        )
        for rnd in range(1, args.rounds + 1):
            for target in targets:
                script, nonce = write_script(work, target.secret)
                target.nonces.append(nonce)
                log(f"round {rnd}: {target.label}")
                result = run_wrk(target.url, script, args.duration, args.connections, args.threads)
                target.results.append(result)
                log(
                    f"  {result.rps:.0f} req/s, non-2xx {result.non2xx},"
                    f" socket errors: {result.socket_errors}"
                )

        print(f"\nE1 ingest, wrk POST of unique form bodies ({machine_line()})")
        print(
            f"duration {args.duration}s/round, {args.connections} connections,"
            f" {args.threads} wrk threads, {args.workers} server workers each side;"
            " rounds alternate between servers\n"
        )
        headers = ["round", *(t.label for t in targets)]
        rows: list[list[object]] = []
        for i in range(args.rounds):
            rows.append([i + 1, *(f"{t.results[i].rps:.0f}" for t in targets)])
        meds = {t.label: median([r.rps for r in t.results]) for t in targets}
        rows.append(["median", *(f"{meds[t.label]:.0f}" for t in targets)])
        rows.append(["non-2xx", *(sum(r.non2xx for r in t.results) for t in targets)])
        rows.append(["sock err", *(socket_errors(t.results) for t in targets)])
        rows.append(["latency", *("/".join(r.latency_avg for r in t.results) for t in targets)])
        print(table(headers, rows))
        print(
            "(php -S closes the connection after every response, which wrk counts as a socket"
            " read error: one per PHP request, not a failure)\n"
        )
        base = meds["php-sample"]
        ok_all = True
        for target in targets[1:]:
            ratio = meds[target.label] / base if base else float("nan")
            bar = "meets" if ratio >= 1.0 else "BELOW"
            aim = " and the 1.5x aim" if ratio >= 1.5 else ""
            print(
                f"ratio {target.label} / php-sample (median req/s): {ratio:.2f}x"
                f"  [bar >= 1.0x: {bar}{aim}]"
            )
        print(
            f"php-sample wrote {php.stored_lines()} messages to its test.txt"
            f" (wrk saw {sum(r.ok200 for r in targets[0].results)} answered 200;"
            " PHP appends without fsync, smssync commits durably)"
        )
        print()
        for target in targets[1:]:
            server = servers[target.label]
            server.stop()
            ok, detail = verify(target, server)
            ok_all &= ok
            print("check: " + detail)
            problems = server.log_problems()
            if problems:
                ok_all = False
                print(f"  {target.label} log has {len(problems)} error lines, e.g.:")
                for line in problems[:5]:
                    print("    " + line[:200])
        if not ok_all:
            for label, server in servers.items():
                log(f"{label} log tail:\n{tail(server.logfile, 30)}")
        return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
