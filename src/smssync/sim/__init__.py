"""Simulated phones and the network between them, for tests and the no-phone demo."""

from __future__ import annotations
