"""smssync: the SMSsync Sync URL server and a Python gateway that plays the phone."""

from __future__ import annotations

__version__ = "0.1.0"
