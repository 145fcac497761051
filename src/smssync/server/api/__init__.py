"""The application API under ``/api/v1`` (FastAPI): messages, inbox, devices, webhooks, rules."""

from __future__ import annotations
