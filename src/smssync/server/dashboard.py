"""What the server hands the dashboard it mounts: the store, a session key, a brake on
guessing passwords, and its own ways of registering a phone, making an API key or a
webhook secret, and waking its webhook dispatcher."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from smssync.dashboard.context import DashboardContext, PhoneSetup
from smssync.dashboard.sessions import session_key
from smssync.serialize import import_payload, import_text
from smssync.server import metrics
from smssync.server.apikeys import create_key, generate_signing_secret
from smssync.server.credentials import create_device, generate_secret, rotate_secret
from smssync.server.throttle import Throttle
from smssync.settings import Settings
from smssync.store.engine import Database


def dashboard_context(
    settings: Settings, store: Database, key: bytes, wake_hooks: Callable[[], None]
) -> DashboardContext:
    """Build the dashboard's context over the server's open store and key; ``wake_hooks``
    rings the process's webhook dispatcher."""

    async def add_phone(name: str) -> PhoneSetup:
        device, issued = await create_device(
            store, name, datetime.now(UTC), secret=generate_secret()
        )
        url = settings.device_url(issued.token)
        payload = import_text(import_payload(device.name, url, issued.secret))
        return PhoneSetup(device.name, url, issued.secret or "", payload)

    async def rotate_phone(name: str, new_url: bool) -> PhoneSetup:
        device, issued = await rotate_secret(store, name, secret=generate_secret(), new_url=new_url)
        url = settings.device_url(issued.token)
        payload = import_text(import_payload(device.name, url, issued.secret))
        return PhoneSetup(device.name, url, issued.secret or "", payload)

    return DashboardContext(
        settings=settings,
        store=store,
        session_key=session_key(key),
        # Its own buckets: a phone's failures never lock a person out, nor the reverse.
        limiter=Throttle(
            settings.auth_failures_burst,
            settings.auth_failures_per_min,
            report=metrics.auth_counted,
        ),
        add_phone=add_phone,
        create_key=lambda name, scopes, now: create_key(store, name, scopes, now),
        signing_secret=generate_signing_secret,
        wake_hooks=wake_hooks,
        rotate_phone=rotate_phone,
    )
