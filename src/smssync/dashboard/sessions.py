"""Sessions in signed cookies: who signed in, when, and the token their forms carry.

The cookie holds ``{"u": user id or null, "c": CSRF token, "t": issued at (µs)}``, signed
with itsdangerous under a key derived from the server key, so every worker and every server
on the same store accepts it, and no server-side table is needed. It is ``HttpOnly``,
``SameSite=Lax`` and ``Secure`` when the page came over HTTPS (or the public URL is). A
session is void once its user is removed or changes password after it was issued.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from smssync.dashboard.context import DashboardContext
from smssync.records import User
from smssync.store import users
from smssync.store.rows import to_us

COOKIE = "smssync_session"
#: A signed-in browser stays so for a working day, then signs in again.
MAX_AGE_S = 12 * 3600
_SALT = "smssync.dashboard.session"


def session_key(server_key: bytes) -> bytes:
    """Derive the cookie-signing key from the server key (never the key itself)."""
    return hmac.new(server_key, b"smssync dashboard sessions", hashlib.sha256).digest()


@dataclasses.dataclass(frozen=True)
class Session:
    """A browser's session: its user (None before sign-in) and its CSRF token."""

    user_id: int | None
    csrf: str
    issued_us: int

    @classmethod
    def anonymous(cls) -> Session:
        """Return a new session without a user (the sign-in form's token)."""
        return cls(None, secrets.token_urlsafe(24), to_us(datetime.now(UTC)))

    @classmethod
    def signed_in(cls, user: User) -> Session:
        """Return a new session for ``user``, with a fresh CSRF token."""
        return cls(user.id, secrets.token_urlsafe(24), to_us(datetime.now(UTC)))


def _serializer(ctx: DashboardContext) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.session_key, salt=_SALT)


def read_session(request: Request, ctx: DashboardContext) -> Session | None:
    """Return the request's session if its cookie is signed by us and not expired."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        data: Any = _serializer(ctx).loads(cookie, max_age=MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    user_id, csrf, issued = data.get("u"), data.get("c"), data.get("t")
    if not isinstance(csrf, str) or not isinstance(issued, int):
        return None
    if user_id is not None and not isinstance(user_id, int):
        return None
    return Session(user_id, csrf, issued)


async def session_user(ctx: DashboardContext, session: Session | None) -> User | None:
    """Return the session's user, unless removed or re-passworded since it was issued."""
    if session is None or session.user_id is None:
        return None
    user = await users.user_by_id(ctx.store, session.user_id)
    if user is None or to_us(user.password_changed_at) > session.issued_us:
        return None
    return user


def secure(request: Request, ctx: DashboardContext) -> bool:
    """Tell whether the browser reached us over HTTPS (directly, or per the public URL)."""
    return request.url.scheme == "https" or ctx.settings.public_url.startswith("https://")


def attach(response: Response, request: Request, ctx: DashboardContext, session: Session) -> None:
    """Set the session cookie on ``response``."""
    value = _serializer(ctx).dumps(
        {"u": session.user_id, "c": session.csrf, "t": session.issued_us}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure(request, ctx),
    )


def forget(response: Response, request: Request, ctx: DashboardContext) -> None:
    """Remove the session cookie (sign-out)."""
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=secure(request, ctx)
    )


def same_token(session: Session, presented: object) -> bool:
    """Compare a form's CSRF token with the session's, in constant time."""
    if not isinstance(presented, str):
        return False
    return hmac.compare_digest(session.csrf.encode(), presented.encode())
