"""Rules and webhook endpoints for incoming SMS, cached so the ingest path rarely reads them.

The ingest path is the hot one: with nothing configured it must cost nothing beyond
storing the SMS, so the cache remembers "nothing" too. Changes made by any process (the
API, the CLI, another server) apply at once (``Database.fresh``); ``TTL_S`` is a safety net.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime

from smssync.addresses import looks_numeric
from smssync.records import (
    Device,
    Event,
    HookConfig,
    InboundPlan,
    NewInbound,
    NewOutbound,
    Rule,
    RuleKind,
    new_outbound,
)
from smssync.store import rules
from smssync.store.engine import Database

#: Longest the configuration is trusted without a change heard: a safety net only.
TTL_S = 30.0
#: Auto-replies jump the queue, so that they fit in the phone's E1 reply.
REPLY_PRIORITY = 100


def matches(rule: Rule, pattern: re.Pattern[str] | None, record: NewInbound) -> bool:
    """Tell whether a rule matches an incoming SMS."""
    if rule.kind is RuleKind.KEYWORD:
        words = record.content.split(maxsplit=1)
        return bool(words) and words[0].casefold() == rule.pattern.casefold()
    if rule.kind is RuleKind.SENDER:
        return rule.pattern in (record.from_addr, record.from_raw)
    return pattern is not None and pattern.search(record.content) is not None


class Hooks:
    """The cached configuration, the plan for each incoming SMS, and the dispatcher's bell."""

    def __init__(self, store: Database) -> None:
        self.store = store
        self._config: HookConfig | None = None
        self._patterns: dict[int, re.Pattern[str] | None] = {}
        self._expires = 0.0
        #: Set whenever this process wrote deliveries, so the dispatcher need not wait.
        self.wake = asyncio.Event()
        store.on_change("hooks", self.invalidate)

    def invalidate(self) -> None:
        """Forget the cache (rules or webhooks changed)."""
        self._expires = 0.0

    async def config(self) -> HookConfig:
        """Return the configuration, read again after any process changed it."""
        await self.store.fresh()
        now = time.monotonic()
        if self._config is not None and now < self._expires:
            return self._config
        generation = self.store.generation("hooks")
        config = await rules.hook_config(self.store)
        self._patterns = {
            rule.id: _compile(rule.pattern) for rule in config.rules if rule.kind is RuleKind.REGEX
        }
        self._config = config
        # Read across a change: used this once, read again next time.
        self._expires = now + TTL_S if self.store.generation("hooks") == generation else 0.0
        return config

    async def plan(self, device: Device, record: NewInbound, now: datetime) -> InboundPlan | None:
        """Return what a new SMS needs besides being stored, or None for nothing."""
        config = await self.config()
        if config.empty:
            return None
        endpoint_ids = [e.id for e in config.endpoints if Event.RECEIVED in e.events]
        rule = next((r for r in config.rules if matches(r, self._patterns.get(r.id), record)), None)
        if rule is None and not endpoint_ids:
            return None
        replies: list[NewOutbound] = []
        if rule is not None and rule.forward_endpoint_id is not None:
            endpoint_ids.append(rule.forward_endpoint_id)
        if rule is not None and rule.auto_reply and looks_numeric(record.from_addr):
            # Only a phone number can be answered, and from the phone that received it.
            replies.append(
                new_outbound(record.from_addr, rule.auto_reply, device.name, now, REPLY_PRIORITY)
            )
        return InboundPlan(
            device=device.name,
            endpoint_ids=tuple(endpoint_ids),
            rule_id=None if rule is None else rule.id,
            tag=None if rule is None else rule.tag,
            replies=tuple(replies),
        )


def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # validated on creation; a bad stored pattern matches nothing
