"""Server CPU per incoming SMS (E1): µs of CPU per request, this tree against another.

On a machine shared with other programs, requests per second swing with their load; the CPU
a server spends per request does much less. Per tree (this one, and ``--baseline`` when
given: another checkout with its own ``.venv``), rounds alternate: a fresh
``smssync serve --workers 1`` on a fresh store, ``wrk`` posting the E1 bodies of
``ingest.py`` (every ``message_id`` unique) for ``--duration`` seconds after a 2 s warm-up,
and the server's CPU seconds from ``/proc`` before and after, split into the event loop's
thread and the others (the SQLite writer, readers, PostgreSQL's pool), divided by the
requests answered. The best round of each tree is the figure (noise only adds CPU).
PostgreSQL's own processes are not counted.

Run: ``.venv/bin/python bench/ingest_cpu.py [--baseline OTHER_TREE] [--store sqlite|postgres]
[--rounds 3] [--duration 5] [--connections 16]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchlib import (
    ROOT,
    ensure_tools,
    free_port,
    log,
    machine_line,
    pg_database,
    stop_process,
    table,
    wait_http,
)
from ingest import LUA

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """Return the CPU seconds (user + system) of a process's main thread and of the rest."""
    loop = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            seconds = (int(fields[11]) + int(fields[12])) / TICK
            if task.name == str(pid):
                loop += seconds
            else:
                others += seconds
    return loop, others


def wrk(url: str, script: Path, seconds: int, connections: int) -> int:
    """Run wrk and return the requests answered; fail on any non-2xx answer."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if "Non-2xx" in out.stdout or out.returncode != 0:
        raise RuntimeError(f"wrk: {out.stdout}{out.stderr}")
    found = re.search(r"(\d+) requests in", out.stdout)
    return int(found.group(1)) if found else 0


@contextlib.contextmanager
def serving(tree: Path, store: str, workdir: Path) -> Iterator[tuple[str, int, str]]:
    """Run ``smssync serve --workers 1`` of ``tree`` on a fresh store with one device;
    yield its Sync URL, its pid and the device's secret."""
    exe = str(tree / ".venv" / "bin" / "smssync")
    port = free_port()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_database("bench_cpu")) if store == "postgres" else ""
        env = {
            **os.environ,
            "SMSSYNC_DATA_DIR": str(workdir / "data"),
            "SMSSYNC_DATABASE_URL": url,
            "SMSSYNC_HOST": "127.0.0.1",
            "SMSSYNC_PORT": str(port),
            "SMSSYNC_DEFAULT_REGION": "KE",
        }
        secret = "bench-secret-" + secrets.token_hex(4)
        add = [exe, "device", "add", "bench", "--secret", secret, "--json"]
        subprocess.run(add, env=env, check=True, capture_output=True, timeout=120)
        logfile = workdir / "server.log"
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                [exe, "serve", "--port", str(port), "--workers", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            base = f"http://127.0.0.1:{port}/smssync"
            wait_http(base, proc, logfile)
            yield base, proc.pid, secret
        finally:
            stop_process(proc)


def one_round(tree: Path, args: argparse.Namespace) -> tuple[float, float, float]:
    """Serve and load once; return µs of CPU per E1: loop thread, other threads, req/s."""
    with tempfile.TemporaryDirectory(prefix="smssync-cpu-") as scratch:
        workdir = Path(scratch)
        with serving(tree, args.store, workdir) as (url, pid, secret):
            script = workdir / "e1.lua"
            script.write_text(LUA % {"nonce": secrets.token_hex(4), "secret": secret})
            wrk(url, script, 2, args.connections)  # warm-up: imports, caches, first pages
            loop0, others0 = cpu_seconds(pid)
            answered = wrk(url, script, args.duration, args.connections)
            loop1, others1 = cpu_seconds(pid)
    if not answered:
        raise RuntimeError("wrk saw no answer")
    per = 1e6 / answered
    return (loop1 - loop0) * per, (others1 - others0) * per, answered / args.duration


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout, with its own .venv")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per tree")
    parser.add_argument("--duration", type=int, default=5, help="seconds per round")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    ensure_tools({"wrk": "wrk"})
    trees = {"this tree": ROOT}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    for number in range(1, args.rounds + 1):
        for name, tree in trees.items():
            log(f"round {number}: {name}")
            results[name].append(one_round(tree, args))
    load = os.getloadavg()
    print(f"\nCPU per E1, {args.store}, serve --workers 1 ({machine_line()})")
    print(f"{args.connections} connections, {args.duration}s/round, load {load[0]:.1f}\n")
    rows = []
    for name, found in results.items():
        best = min(found, key=lambda r: r[0] + r[1])
        every = " ".join(f"{loop + others:.0f}" for loop, others, _ in found)
        rows.append([name, f"{sum(best[:2]):.0f}", f"{best[0]:.0f}", f"{best[1]:.0f}", every])
    print(table(["tree", "µs/E1 (best)", "loop", "other threads", "every round"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
