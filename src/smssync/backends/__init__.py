"""Device backends: the part of the gateway that touches the phone network."""

from __future__ import annotations
