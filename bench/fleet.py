"""Fleet scale: N registered phones at the app's own timing against one ``smssync serve``.

Per store and per N (``--phones``), on a fresh database with N devices registered through
the store in bulk (``Store.add_devices``) and one ``smssync serve --workers 1`` (``--workers``):

1. **Quiet poll cost**: ``--probe`` phones poll ``task=send`` one after the other; the
   server's CPU time (``/proc``) divided by the polls is the CPU of one poll.
2. **The fleet's own load** for ``--duration`` seconds: every phone polls ``task=send`` (E4)
   every 5 minutes and ``task=result`` (E6) half a cycle later, sends one incoming SMS (E1)
   an hour, and the fleet is sent one outgoing SMS per phone per hour through the API, which
   the polls hand out, confirm (E5) and report (E7). Phases are random. Printed: intended and
   achieved requests/s, p50/p99 per exchange (from when each request was due), errors, the
   server's CPU per request and RSS, and the generator's own CPU (above ~70 % of a core it
   may be the bottleneck, and the table says so).

``--baseline PATH`` runs the same against another tree's ``src`` (e.g. a ``git worktree`` of
the commit before), alternating with this tree's at each N; the baseline's full load is run
up to ``--baseline-max`` phones only (beyond, it saturates: its quiet poll cost says why).
``--time-scale F`` divides every interval by F (the same ratios, F times the rate).

Run: ``.venv/bin/python bench/fleet.py [--phones 1000,10000] [--duration 30]
[--store sqlite|postgres|both] [--baseline ../base/src] [--time-scale 1]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from benchlib import ROOT, SmssyncServer, log, machine_line, percentile, pg_database, table
from fleetload import Fleet, Phone, Pool, Timing, get

from smssync.records import DeviceSettings, Scope
from smssync.server.apikeys import create_key
from smssync.server.credentials import issue
from smssync.store import devices, open_store, serverkey

T = TypeVar("T")

EXCHANGES = ("E1", "API", "E4", "E5", "E6", "E7")
#: The bar: every exchange's p99 under this, and no error.
P99_LIMIT_S = 0.200
#: Above this share of one core, the generator itself may be what limits the run.
GENERATOR_LIMIT = 0.70
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def arun(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when installed (a cheaper generator), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    return uvloop.run(work)


@dataclasses.dataclass
class Run:
    """One tree on one store with N phones."""

    tree: str
    store: str
    phones: int
    poll_cpu_ms: float = 0.0
    loaded: bool = False
    intended_rps: float = 0.0
    achieved_rps: float = 0.0
    p50: dict[str, float] = dataclasses.field(default_factory=dict)
    p99: dict[str, float] = dataclasses.field(default_factory=dict)
    errors: int = 0
    error_kinds: str = ""
    cpu_per_request_ms: float = 0.0
    rss_mb: float = 0.0
    generator_cpu: float = 0.0
    lag_max_s: float = 0.0
    log_problems: int = 0

    @property
    def ok(self) -> bool:
        """Whether the run met the bar."""
        return (
            self.loaded
            and self.errors == 0
            and all(v < P99_LIMIT_S for v in self.p99.values())
            and self.achieved_rps >= 0.95 * self.intended_rps
        )


def group(root: int) -> list[int]:
    """A process and its descendants (the server and, with --workers, its workers, which
    leave the parent's process group)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found.extend(frontier)
    return found


def server_cpu_s(root: int) -> float:
    """User plus system CPU seconds of the server's processes so far."""
    total = 0.0
    for pid in group(root):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def server_rss_mb(root: int) -> float:
    """Resident memory of the server's processes, in MB."""
    total = 0.0
    for pid in group(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def own_cpu_s() -> float:
    """This process's user plus system CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def register(url: str, data_dir: Path, count: int) -> tuple[list[Phone], str]:
    """Register ``count`` phones and one API key through the store, hashed with the server
    key of ``data_dir`` as the server will read it (this tree's code: a baseline tree must
    share its schema and store verbs); return the phones and the key."""
    store = open_store(url)
    await store.open()
    try:
        key = await serverkey.use_server_key(store, data_dir)
        now = datetime.now(UTC)
        phones: list[Phone] = []
        for start in range(0, count, 10_000):
            entries = []
            for i in range(start, min(count, start + 10_000)):
                secret = f"fleet-{i}-{os.urandom(6).hex()}"
                issued, hashed = issue(key, secret=secret)
                entries.append((f"phone{i:06d}", hashed, DeviceSettings()))
                phones.append(Phone(f"/smssync/d/{issued.token}", secret, f"+2547{i:08d}"))
            await devices.add_devices(store, entries, now)
        _, api_key = await create_key(store, "fleet", [Scope.SEND], now)
        return phones, api_key
    finally:
        await store.close()


async def probe(pool: Pool, phones: list[Phone], pid: int, count: int, budget_s: float) -> float:
    """Return the server's CPU milliseconds per quiet ``task=send`` poll."""
    before, started, done = server_cpu_s(pid), time.monotonic(), 0
    for phone in phones[-count:]:
        # A baseline may take seconds per poll: no request timeout here, only the budget.
        status, _ = await pool.request(
            get(f"{phone.path}?task=send&secret={phone.secret}"), timeout_s=None
        )
        if status != 200:
            raise RuntimeError(f"probe poll answered {status}")
        done += 1
        if time.monotonic() - started > budget_s:
            break
    return (server_cpu_s(pid) - before) * 1000 / done


async def measure(
    run: Run, server: SmssyncServer, phones: list[Phone], api_key: str, args: argparse.Namespace
) -> None:
    """Probe, then load the server with the fleet; fill ``run``."""
    assert server.proc is not None
    pid = server.proc.pid
    pool = Pool("127.0.0.1", server.port, args.connections)
    try:
        # Start-up work (the first liveness check records every device) settles first.
        await asyncio.sleep(args.settle)
        run.poll_cpu_ms = await probe(pool, phones, pid, args.probe, args.probe_budget)
        log(f"{run.tree} {run.store} {run.phones}: {run.poll_cpu_ms:.1f} ms CPU per quiet poll")
        if run.tree == "baseline" and run.phones > args.baseline_max:
            return
        fleet = Fleet(pool, phones[: -args.probe], api_key, Timing().scaled(args.time_scale))
        run.intended_rps = sum(fleet.intended_rates().values())
        cpu0, own0, wall0 = server_cpu_s(pid), own_cpu_s(), time.monotonic()
        tally = await fleet.run(args.duration)
        wall = time.monotonic() - wall0
        requests = sum(len(v) for v in tally.latency.values())
        run.loaded = True
        run.achieved_rps = (requests + sum(tally.errors.values())) / args.duration
        run.cpu_per_request_ms = (server_cpu_s(pid) - cpu0) * 1000 / max(requests, 1)
        run.generator_cpu = (own_cpu_s() - own0) / wall
        run.rss_mb = server_rss_mb(pid)
        run.lag_max_s = tally.lag_max_s
        run.errors = sum(tally.errors.values())
        run.error_kinds = ", ".join(f"{k}: {v}" for k, v in tally.errors.most_common(4))
        for kind, values in tally.latency.items():
            run.p50[kind] = percentile(values, 50)
            run.p99[kind] = percentile(values, 99)
    finally:
        pool.close()


@contextlib.contextmanager
def database(store: str) -> Iterator[str]:
    """Yield a fresh PostgreSQL URL, or "" for SQLite in the server's folder."""
    if store == "postgres":
        with pg_database("smssync_fleet") as url:
            yield url
    else:
        yield ""


def one(tree: str, src: Path, store: str, n: int, work: Path, args: argparse.Namespace) -> Run:
    """Run one tree against a fresh store with ``n`` phones."""
    run = Run(tree, store, n)
    folder = Path(tempfile.mkdtemp(prefix=f"{tree}-{store}-{n}-", dir=work))
    with database(store) as url:
        server = SmssyncServer(folder, url, workers=args.workers)
        server.env["PYTHONPATH"] = str(src)
        # The first start creates and migrates the store; the phones are added to it after.
        server.cli("migrate")
        started = time.monotonic()
        phones, api_key = arun(register(server.store_url, folder / "data", n))
        log(f"{tree} {store} {n}: registered in {time.monotonic() - started:.1f}s")
        server.start()
        try:
            arun(measure(run, server, phones, api_key, args))
        finally:
            server.stop()
            run.log_problems = len(server.log_problems())
    return run


def report(runs: list[Run], args: argparse.Namespace) -> None:
    """Print the tables."""
    print(machine_line())
    print(
        f"timing x{args.time_scale}, {args.duration:.0f}s of load per run, "
        f"serve --workers {args.workers}\n"
    )
    rows = []
    for r in runs:
        if not r.loaded:
            rows.append([r.tree, r.store, r.phones, f"{r.poll_cpu_ms:.1f}", *["-"] * 9])
            continue
        p = " ".join(
            f"{k} {r.p50.get(k, 0) * 1000:.0f}/{r.p99.get(k, 0) * 1000:.0f}" for k in EXCHANGES
        )
        gen = f"{r.generator_cpu:.0%}" + (" (limit?)" if r.generator_cpu > GENERATOR_LIMIT else "")
        rows.append(
            [
                r.tree, r.store, r.phones, f"{r.poll_cpu_ms:.1f}",
                f"{r.intended_rps:.0f}", f"{r.achieved_rps:.0f}", p, r.errors,
                f"{r.cpu_per_request_ms:.2f}", f"{r.rss_mb:.0f}", gen,
                f"{r.lag_max_s * 1000:.0f}", "yes" if r.ok else "no",
            ]
        )  # fmt: skip
    headers = [
        "tree", "store", "phones", "CPU/poll ms", "req/s want", "req/s got",
        "p50/p99 ms per exchange", "errors", "CPU/req ms", "RSS MB", "generator CPU",
        "lag ms", "ok",
    ]  # fmt: skip
    print(table(headers, rows))
    for r in runs:
        if r.error_kinds:
            print(f"{r.tree} {r.store} {r.phones}: {r.error_kinds}")
    for store in sorted({r.store for r in runs}):
        for tree in ("baseline", "this tree"):
            mine = [r for r in runs if r.store == store and r.tree == tree]
            if mine:
                best = max((r.phones for r in mine if r.ok), default=0)
                print(f"largest N served at p99 < 200 ms without error, {tree} on {store}: {best}")
        ours = {r.phones: r for r in runs if r.store == store and r.tree == "this tree"}
        if ours:
            low, high = ours[min(ours)], ours[max(ours)]
            print(
                f"{store}: CPU per quiet poll at {high.phones} / at {low.phones} phones: "
                f"{high.poll_cpu_ms / max(low.poll_cpu_ms, 1e-9):.2f}x"
            )
        for r in runs:
            base = next(
                (b for b in runs if (b.tree, b.store, b.phones) == ("baseline", store, r.phones)),
                None,
            )
            if r.tree == "this tree" and r.store == store and base is not None:
                print(
                    f"{store} {r.phones}: baseline / this tree CPU per quiet poll "
                    f"{base.poll_cpu_ms / max(r.poll_cpu_ms, 1e-9):.1f}x"
                )


def main() -> int:
    """Parse options, run every (N, tree, store), print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", default="1000,10000,30000,100000")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--baseline", type=Path, default=None, help="another tree's src folder")
    parser.add_argument("--baseline-max", type=int, default=3000, help="full load up to")
    parser.add_argument("--baseline-probe-max", type=int, default=30000, help="probe up to")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--workers", type=int, default=1, help="serve --workers")
    parser.add_argument("--probe", type=int, default=40)
    parser.add_argument("--probe-budget", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=8.0)
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    trees = [("this tree", ROOT / "src")]
    if args.baseline is not None:
        trees.insert(0, ("baseline", args.baseline.resolve()))
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="smssync-fleet-") as work:
        for n in [int(x) for x in args.phones.split(",")]:
            for store in stores:
                for tree, src in trees:
                    if tree == "baseline" and n > args.baseline_probe_max:
                        continue
                    try:
                        runs.append(one(tree, src, store, n, Path(work), args))
                    except Exception as exc:  # one failed run must not lose the others
                        log(f"{tree} {store} {n} failed: {type(exc).__name__}: {exc}")
                        runs.append(Run(tree, store, n, error_kinds=f"run failed: {exc!r}"))
                    log(f"done: {runs[-1]}")
    report(runs, args)
    problems = sum(r.log_problems for r in runs)
    if problems:
        print(f"{problems} error line(s) in the server logs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
