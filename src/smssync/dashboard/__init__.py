"""The dashboard: server-rendered pages for the people who run the phones (issue 18)."""

from __future__ import annotations
