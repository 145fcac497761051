"""The gateway: plays the SMSsync app's part for any SMSsync server, without its bugs."""

from __future__ import annotations
