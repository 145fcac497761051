"""Outgoing SMS through faults at the sizes of issue 13; print one row per run.

Usage: .venv/bin/python bench/outbound_faults.py [--scale 1.0] [--json]

Three gateways on three simulated phones poll one ``smssync serve`` (SQLite) through a
fault-injecting proxy. The runs:

1. 1,000 queued; 30 % of connections closed after the request was forwarded;
2. 2,000 queued; every kind of fault at 25 %, the server and a gateway ``kill -9``-ed;
3. 60 queued; delivery reports 8 s after each send.

Each row gives what the phones sent (from the simulated network), what was sent twice or
never, the server's final statuses, and what the proxy did. Not a timing benchmark: it
checks the outcome at a size the test suite cannot afford. ``--scale`` shrinks the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.outbound_run import Plan, describe, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args()
    plans = {
        "lost replies": Plan(count=int(1000 * args.scale), rate=0.3, kinds=("after",),
                             timeout_s=900),
        "mixed + kill -9": Plan(count=int(2000 * args.scale), rate=0.25, kill_server=True,
                                kill_gateway=True, timeout_s=1200),
        "late reports": Plan(count=max(1, int(60 * args.scale)), rate=0.0, report_delay_s=8.0,
                             timeout_s=300),
    }  # fmt: skip
    bad = 0
    for name, plan in plans.items():
        with tempfile.TemporaryDirectory(prefix="smssync-outbound-") as folder:
            outcome = run(Path(folder), plan)
        figures = describe(outcome)
        bad += figures["never_sent"] + figures["sent_twice"] + figures["untrue"]
        if args.json:
            print(json.dumps({"run": name, **figures}))
        else:
            print(f"{name}: {outcome.summary()}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
