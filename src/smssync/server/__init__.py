"""The Sync URL server: the SMSsync endpoint and, later, the application API."""

from __future__ import annotations
