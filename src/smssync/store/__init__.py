"""Persistence: one Store interface, SQLite and PostgreSQL behind it."""

from __future__ import annotations
