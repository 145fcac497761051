"""The dashboard as one Starlette app, mounted by server/app.py at ``/dashboard``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from smssync.dashboard import (
    activity,
    alerts,
    campaigns,
    compose,
    conversations,
    keys,
    outbox,
    phone,
    phones,
    rules,
    signin,
    users,
    webhooks,
)
from smssync.dashboard.render import PREFIX, render


async def home(request: Request) -> Response:
    """Send ``/`` and ``/dashboard`` to the conversations (or to sign-in first)."""
    return RedirectResponse(f"{PREFIX}/conversations", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: "No such page.", 405: "That is not how this page is used."}.get(
        status, exc.detail if isinstance(exc, HTTPException) else "Something went wrong."
    )
    return render(request, "error.html", status=status, message=message, visitor=None)


def create_dashboard() -> Starlette:
    """Build the dashboard; its ``state.ctx`` (a DashboardContext) is set by the server."""
    routes = [
        Route("/", home),
        Route("/signin", signin.signin_page, methods=["GET"]),
        Route("/signin", signin.signin, methods=["POST"]),
        Route("/signout", signin.signout, methods=["POST"]),
        Route("/conversations", conversations.threads_page, methods=["GET"]),
        Route("/conversations/new", conversations.start, methods=["GET"]),
        Route("/conversations/changes", conversations.threads_changes, methods=["GET"]),
        Route("/conversations/{number}", conversations.thread_page, methods=["GET"]),
        Route("/conversations/{number}/changes", conversations.changes, methods=["GET"]),
        Route("/conversations/{number}/reply", conversations.reply, methods=["POST"]),
        Route("/phones", phones.phones_page, methods=["GET"]),
        Route("/phones/rows", phones.phones_rows, methods=["GET"]),
        Route("/phones/add", phones.add_page, methods=["GET"]),
        Route("/phones/add", phones.add, methods=["POST"]),
        Route("/phones/{name}", phone.phone_page, methods=["GET"]),
        Route("/phones/{name}/rotate", phone.rotate, methods=["POST"]),
        Route("/phones/{name}/disable", phone.disable, methods=["POST"]),
        Route("/phones/{name}/enable", phone.enable, methods=["POST"]),
        Route("/phones/{name}/remove", phone.remove, methods=["POST"]),
        Route("/outbox", outbox.outbox_page, methods=["GET"]),
        Route("/outbox/{message_id}/cancel", outbox.cancel, methods=["POST"]),
        Route("/outbox/{message_id}/retry", outbox.retry, methods=["POST"]),
        Route("/activity", activity.activity_page, methods=["GET"]),
        Route("/alerts", alerts.alerts_page, methods=["GET"]),
        Route("/alerts/{alert_id}/ack", alerts.acknowledge, methods=["POST"]),
        Route("/compose", compose.compose_page, methods=["GET"]),
        Route("/compose", compose.submit, methods=["POST"]),
        Route("/compose/count", compose.count, methods=["POST"]),
        Route("/campaigns", campaigns.campaigns_page, methods=["GET"]),
        Route("/campaigns/{campaign_id}", campaigns.campaign_page, methods=["GET"]),
        Route("/campaigns/{campaign_id}/counts", campaigns.campaign_counts, methods=["GET"]),
        Route("/campaigns/{campaign_id}/results.csv", campaigns.results_csv, methods=["GET"]),
        Route("/campaigns/{campaign_id}/pause", campaigns.pause, methods=["POST"]),
        Route("/campaigns/{campaign_id}/resume", campaigns.resume, methods=["POST"]),
        Route("/campaigns/{campaign_id}/cancel", campaigns.cancel, methods=["POST"]),
        # Management, for admins: rules, webhooks, API keys, users.
        Route("/rules", rules.rules_page, methods=["GET"]),
        Route("/rules", rules.add, methods=["POST"]),
        Route("/rules/{rule_id}/remove", rules.remove, methods=["POST"]),
        Route("/webhooks", webhooks.webhooks_page, methods=["GET"]),
        Route("/webhooks", webhooks.add, methods=["POST"]),
        Route("/webhooks/{endpoint_id}", webhooks.endpoint_page, methods=["GET"]),
        Route("/webhooks/{endpoint_id}/remove", webhooks.remove, methods=["POST"]),
        Route("/webhooks/deliveries/{delivery_id}/redeliver", webhooks.redeliver, methods=["POST"]),
        Route("/keys", keys.keys_page, methods=["GET"]),
        Route("/keys", keys.create, methods=["POST"]),
        Route("/keys/{key_id}/revoke", keys.revoke, methods=["POST"]),
        Route("/users", users.users_page, methods=["GET"]),
        Route("/users", users.add, methods=["POST"]),
        Route("/users/password", users.set_password, methods=["POST"]),
        Route("/users/remove", users.remove, methods=["POST"]),
        # Served from the package: no CDN, no build step, works offline.
        Mount("/static", StaticFiles(packages=[("smssync.dashboard", "static")]), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
