"""Which Sync URLs an incoming SMS goes to: lists (G-10), filters (G-9), query codes (G-17)."""

from __future__ import annotations

import dataclasses
import re

from smssync.addresses import looks_numeric, normalize
from smssync.gateway.config import GatewayConfig, SyncUrlConfig

QUERY_CODES = ("@10", "@20", "@30", "@40")
RECEPTION_TEXT = "Cell reception ok"


@dataclasses.dataclass(frozen=True)
class Routing:
    """What to do with one incoming SMS."""

    #: Sync URL name → ``pending``, ``filtered`` or ``dropped``; empty for a query code.
    routes: dict[str, str]
    #: The query code to answer instead of forwarding, if the body is one.
    query_code: str | None
    #: Whether the sender passed the white- and blacklist.
    accepted: bool


def normalize_sender(raw: str, region: str) -> str:
    """Return the address as lists compare it: E.164 for numbers, trimmed and case-folded
    otherwise (G-10)."""
    if looks_numeric(raw):
        return normalize(raw, region)
    return raw.strip().casefold()


def sender_accepted(sender: str, config: GatewayConfig) -> bool:
    """Apply the whitelist, then the blacklist, which wins (G-10)."""
    region = config.device.region
    address = normalize_sender(sender, region)
    lists = config.lists
    if lists.whitelist and address not in {normalize_sender(a, region) for a in lists.whitelist}:
        return False
    return address not in {normalize_sender(a, region) for a in lists.blacklist}


def passes_filter(content: str, url: SyncUrlConfig) -> bool:
    """Keywords as case-insensitive substrings, or any regex matching anywhere (G-9)."""
    keywords = [k.strip().casefold() for k in url.keywords if k.strip()]
    if not keywords and not url.regex:
        return True
    body = content.casefold()
    if any(keyword in body for keyword in keywords):
        return True
    return any(re.search(pattern, content, re.IGNORECASE) for pattern in url.regex)


def query_code_of(sender: str, content: str, config: GatewayConfig) -> str | None:
    """Return the query code this SMS asks, when codes are on and the sender may ask."""
    code = content.strip()
    settings = config.query_codes
    if not settings.enabled or code not in QUERY_CODES:
        return None
    if settings.senders:
        region = config.device.region
        allowed = {normalize_sender(a, region) for a in settings.senders}
        if normalize_sender(sender, region) not in allowed:
            return None
    return code


def route(sender: str, content: str, config: GatewayConfig) -> Routing:
    """Decide the state of each (SMS, enabled Sync URL) pair; disabled URLs get none (G-7)."""
    code = query_code_of(sender, content, config)
    if code is not None:
        return Routing({}, code, accepted=True)
    if not sender_accepted(sender, config):
        return Routing({u.name: "dropped" for u in config.enabled_urls}, None, accepted=False)
    routes = {
        u.name: "pending" if passes_filter(content, u) else "filtered" for u in config.enabled_urls
    }
    return Routing(routes, None, accepted=True)


def battery_text(percent: int | None) -> str:
    """Return ``Battery level is at N`` (``-1`` without a battery) (§4.2, E8)."""
    return f"Battery level is at {-1 if percent is None else percent}"


def servers_text(probes: list[tuple[str, int | None]]) -> str:
    """Return the ``@20`` text from (title, status or None) per enabled Sync URL."""
    parts = []
    for title, status in probes:
        if status is None:
            parts.append(f"Cannot reach server {title} \n")
        else:
            parts.append(f"Server {title} responded with {status} status code \n")
    return "".join(parts)


def query_answer(code: str, probes: list[tuple[str, int | None]], battery: int | None) -> str:
    """Return the v2.x answer to a query code (§4.2)."""
    if code == "@10":
        return RECEPTION_TEXT
    if code == "@20":
        return servers_text(probes)
    if code == "@30":
        return battery_text(battery)
    return "\n".join([servers_text(probes), battery_text(battery), RECEPTION_TEXT])
