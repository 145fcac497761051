"""``GET /metrics``: Prometheus' text format, right with any number of worker processes.

Two kinds of figures, each kept where it is true for the whole server:

- what a process sees (requests and their latency, webhook attempts, group-commit sizes) in
  prometheus-client's counters and histograms. Under ``smssync serve`` every worker writes
  them to files of its own in one folder (prometheus-client's multiprocess mode: ``serve``
  creates the folder, sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start and removes
  it when it exits), and the worker that answers a scrape adds up every process's files,
  a dead worker's included, so counts never go back when a worker is replaced;
- what the store holds (SMS in, SMS out by status, queue depth, phones online, webhooks to
  deliver): counted from the database at scrape time (``store.totals``), hence the same
  whichever worker answers.

Without ``PROMETHEUS_MULTIPROC_DIR`` (one process: ``serve --get``, tests) the process's
own registry answers, with prometheus-client's process and Python collectors.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from smssync.errors import SmssyncError
from smssync.records import OutboundStatus, Totals
from smssync.server.context import ServerContext
from smssync.server.shapes import api_body
from smssync.store import totals

log = logging.getLogger("smssync.server")

#: prometheus-client's own variable: read when it is first imported, so it must be set
#: before a worker starts (``smssync serve`` does).
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# The ``*_created`` series (a start time per counter) exist only in one process's memory,
# not in the multiprocess files: off, so that one worker and several expose the same names.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Every answered request: its ``_count`` is the requests by kind and status (one metric, not
#: a counter beside it: each update costs a write to the worker's file on the phone's path).
REQUESTS = Histogram(
    "smssync_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by endpoint kind and status.",
    ["kind", "status"],
    # A phone's request costs some milliseconds: the low buckets tell them apart.
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOK_DELIVERIES = Counter(
    "smssync_webhook_deliveries",
    "Webhook and status-callback attempts the receiver answered with a 2xx.",
)
WEBHOOK_FAILURES = Counter(
    "smssync_webhook_failures",
    "Webhook and status-callback attempts that failed; final: no retry is left (dead).",
    ["final"],
)

#: Failed authentications and the brake's 429s, by kind of credential (``sync_url``,
#: ``basic``, ``apikey``, the dashboard's ``password``): counted here, not only on each
#: process's throttle, so that every worker's count reaches the scrape.
AUTH_FAILURES = Counter(
    "smssync_auth_failures",
    "Failed authentications (wrong or missing credentials), by kind of credential.",
    ["credential"],
)
AUTH_THROTTLED = Counter(
    "smssync_auth_throttled",
    "Requests answered 429 by the brake on guessing, by kind of credential.",
    ["credential"],
)

#: Each (kind, status) pair's child, so that a request costs a dict look-up, not
#: prometheus-client's locked label resolution.
_children: dict[tuple[str, int], Histogram] = {}


def observe_request(kind: str, status: int, seconds: float) -> None:
    """Count one answered request (status 0: none was sent) and its latency."""
    child = _children.get((kind, status))
    if child is None:
        child = _children[(kind, status)] = REQUESTS.labels(kind, str(status) if status else "none")
    child.observe(seconds)


def webhook_attempt(delivered: bool, final: bool = False) -> None:
    """Count one webhook attempt: delivered, or failed (final when it is now dead)."""
    if delivered:
        WEBHOOK_DELIVERIES.inc()
    else:
        WEBHOOK_FAILURES.labels("true" if final else "false").inc()


def auth_counted(outcome: str, credential: str) -> None:
    """Count what the brake on guessing saw: a ``failure``, or a request it ``throttled``."""
    counter = AUTH_FAILURES if outcome == "failure" else AUTH_THROTTLED
    counter.labels(credential).inc()


class StoreCollector(Collector):
    """The store's totals of one scrape as gauges (None: the store did not answer)."""

    def __init__(self, found: Totals | None) -> None:
        self.found = found

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges."""
        found = self.found
        yield GaugeMetricFamily(
            "smssync_store_up", "1 when the store answered this scrape's counts.", int(bool(found))
        )
        if found is None:
            return
        yield GaugeMetricFamily("smssync_sms_in", "Incoming SMS stored.", found.inbound)
        out = GaugeMetricFamily("smssync_sms_out", "Outgoing SMS by status.", labels=["status"])
        for status, count in found.outbound.items():
            out.add_metric([status.value], count)
        yield out
        yield GaugeMetricFamily(
            "smssync_queue_depth",
            "Outgoing SMS queued, waiting for a phone to take them.",
            found.outbound[OutboundStatus.QUEUED],
        )
        yield GaugeMetricFamily("smssync_phones", "Devices registered.", found.devices)
        yield GaugeMetricFamily(
            "smssync_phones_online",
            "Devices that polled within their liveness window.",
            found.online,
        )
        yield GaugeMetricFamily(
            "smssync_webhook_deliveries_pending",
            "Webhook deliveries and status callbacks not yet delivered (nor dead).",
            found.webhooks_pending,
        )
        open_alerts = GaugeMetricFamily(
            "smssync_alerts_open", "Alerts raised and not resolved, by kind.", labels=["kind"]
        )
        for kind, count in found.alerts_open.items():
            open_alerts.add_metric([kind], count)
        yield open_alerts


def exposition(found: Totals | None) -> bytes:
    """Render every metric: all processes' (or this one's) and the store's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(found))
    if os.environ.get(MULTIPROC_VARIABLE):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY) + generate_latest(registry)


def authorized(request: Request, token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>`` (constant time)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def metrics(request: Request) -> Response:
    """Answer a scrape; 401 without the token when ``metrics_token`` is set."""
    ctx: ServerContext = request.app.state.ctx
    token = ctx.settings.metrics_token
    if token and not authorized(request, token):
        body = api_body(401, "GET /metrics needs Authorization: Bearer <the metrics token>")
        headers = {"www-authenticate": 'Bearer realm="metrics"'}
        return Response(body, 401, headers, media_type="application/json")
    found: Totals | None
    try:
        found = await totals.totals(ctx.store, datetime.now(UTC))
    except SmssyncError as exc:
        log.warning("metrics: the store did not answer (%s)", type(exc).__name__)
        found = None
    return Response(exposition(found), media_type=CONTENT_TYPE_LATEST)


def worker_exit() -> None:
    """Tell the multiprocess files that this worker is gone (its live gauges drop out;
    its counters and histograms stay, as they must)."""
    if os.environ.get(MULTIPROC_VARIABLE):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
