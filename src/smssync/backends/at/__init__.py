"""The AT modem backend (spec §2): pyserial, PDU mode, our own codec."""

from __future__ import annotations

from smssync.backends.at.backend import AtBackend
from smssync.backends.at.options import AtOptions

__all__ = ["AtBackend", "AtOptions"]
