"""People who sign in to the dashboard, and what each may do."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime


class Role(enum.StrEnum):
    """What a dashboard user may do; each role includes the ones before it."""

    #: Reads conversations, phones and messages.
    VIEWER = "viewer"
    #: Also sends SMS and replies.
    OPERATOR = "operator"
    #: Also manages phones and users.
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Tell whether this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclasses.dataclass(frozen=True)
class User:
    """A dashboard user as stored; the password only as its argon2 hash."""

    id: int
    name: str
    role: Role
    password_hash: str
    created_at: datetime
    password_changed_at: datetime
