"""One HTTP client per Sync URL: every request built, every reply read, by ``smssync.protocol``.

The client never repeats a request by itself (G-7): retries are the runner's decision, made
from durable state; while the URL is down its breaker lets only one probe through. Every
failure, transport or protocol, is a ProtocolError with a reason.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import httpx

from smssync import __version__
from smssync.errors import ProtocolError
from smssync.gateway.breaker import Breaker
from smssync.gateway.config import SyncUrlConfig
from smssync.protocol import inbound, query, results, tasks
from smssync.records import BodyFormat, InboundMessage, MessageResult, TaskMessage

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
DEFAULT_USER_AGENT = f"SMSSync-Android/v3.1.1 smssync-gateway/{__version__}"
#: Connections per httpx pool (see SyncClient).
POOL_SIZE = 4


@dataclasses.dataclass(frozen=True)
class Contact:
    """What one request told about reachability: an HTTP answer (any status) or none."""

    sync_url: str
    reached: bool
    ok: bool
    error: str | None


ContactListener = Callable[[Contact], None]


class SyncClient:
    """Talk to one Sync URL as the App would, without the App's bugs."""

    def __init__(
        self,
        config: SyncUrlConfig,
        user_agent: str = "",
        timeout_s: float = 30.0,
        secret_in_sent: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        on_contact: ContactListener | None = None,
        connections: int = POOL_SIZE,
        breaker: Breaker | None = None,
    ) -> None:
        self.config = config
        self.breaker = breaker
        self.name = config.name
        self._plain_url, authorization = query.split_userinfo(config.url)
        headers = {"User-Agent": user_agent or DEFAULT_USER_AGENT}
        if authorization:
            headers["Authorization"] = authorization
        self._secret_in_sent = secret_in_sent
        self._on_contact = on_contact
        # Several small pools instead of one large one: httpcore checks every pooled connection
        # (a getpeername() each) on every request, so one pool of 16 cost more CPU than the
        # uploads themselves; pools of 4 drained a 10,000-SMS backlog about 1.6x faster.
        pools = 1 if transport is not None else max(1, -(-connections // POOL_SIZE))
        self._clients = [
            httpx.AsyncClient(
                # retries=0: the HTTP layer must never repeat a POST on its own (G-7).
                transport=transport
                or httpx.AsyncHTTPTransport(
                    retries=0, limits=httpx.Limits(max_connections=POOL_SIZE)
                ),
                headers=headers,
                timeout=timeout_s,
                follow_redirects=False,
            )
            for _ in range(pools)
        ]
        self._next = itertools.cycle(self._clients)

    async def close(self) -> None:
        """Close the connection pools."""
        for client in self._clients:
            await client.aclose()

    def _task_url(self, task: str, with_secret: bool = True) -> str:
        return query.task_url(self.config.url, task, self.config.secret if with_secret else None)

    async def _request(
        self, method: str, url: str, body: bytes | None = None, content_type: str | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        probe = self.breaker.check() if self.breaker is not None else False
        try:
            client = next(self._next)
            response = await client.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            if self.breaker is not None:
                self.breaker.failed(probe)
            self._tell(Contact(self.name, reached=False, ok=False, error=_describe(exc)))
            raise ProtocolError(f"{self.name}: unreachable: {_describe(exc)}") from None
        if self.breaker is not None:
            if response.status_code >= 500:
                self.breaker.failed(probe)
            else:
                self.breaker.succeeded()
        self._tell(
            Contact(
                self.name,
                True,
                response.is_success,
                None if response.is_success else f"HTTP {response.status_code}",
            )
        )
        return response

    def _tell(self, contact: Contact) -> None:
        if self._on_contact is not None:
            self._on_contact(contact)

    async def post_incoming(self, sms: InboundMessage) -> list[TaskMessage]:
        """E1: upload one SMS; return the E2 messages of this reply; ProtocolError on failure."""
        fmt = self.config.format
        body = inbound.encode_incoming(sms, self.config.secret, fmt, self.config.key_map)
        content_type = inbound.content_type_for(fmt, self.config.app_xml_label)
        response = await self._request(self.config.method, self._plain_url, body, content_type)
        if response.status_code not in (200, 201):
            raise ProtocolError(f"{self.name}: HTTP {response.status_code}")
        try:
            ok, messages = tasks.parse_piggyback(response.content)
        except ProtocolError as exc:
            raise ProtocolError(f"{self.name}: unreadable reply: {exc.message}") from None
        if not ok:
            raise ProtocolError(f"{self.name}: success is not true")
        return messages

    async def test_integration(self) -> None:
        """E3: the App's test request; ProtocolError unless 200 with ``success`` true (G-5)."""
        body = inbound.encode_test(self.config.secret, self.config.format, self.config.key_map)
        content_type = inbound.content_type_for(self.config.format, self.config.app_xml_label)
        response = await self._request(self.config.method, self._plain_url, body, content_type)
        ok, _ = tasks.parse_piggyback(response.content)
        if response.status_code != 200 or not ok:
            raise ProtocolError(f"{self.name}: HTTP {response.status_code}, success {ok}")

    async def poll_tasks(self) -> list[TaskMessage]:
        """E4: ask for SMS to send; checked as G-11 says."""
        response = await self._request("GET", self._task_url("send"))
        if not response.is_success:
            raise ProtocolError(f"{self.name}: task=send got HTTP {response.status_code}")
        return tasks.parse_send_reply(response.content, self.config.secret)

    async def acknowledge_queued(self, message_ids: list[str]) -> list[str]:
        """E5: list the uuids about to be sent; return those the server lists back."""
        url = self._task_url("sent", with_secret=self._secret_in_sent)
        body = tasks.build_sent_request(message_ids)
        response = await self._request("POST", url, body, JSON_CONTENT_TYPE)
        if response.status_code != 200:
            raise ProtocolError(f"{self.name}: task=sent got HTTP {response.status_code}")
        return tasks.parse_uuids_reply(response.content)

    async def result_uuids(self) -> list[str]:
        """E6: ask which task messages the server wants results for."""
        response = await self._request("GET", self._task_url("result"))
        if response.status_code != 200:
            raise ProtocolError(f"{self.name}: task=result got HTTP {response.status_code}")
        return tasks.parse_uuids_reply(response.content)

    async def post_results(self, entries: list[MessageResult], app_string: bool) -> bool:
        """E7: report results; True when the server answered 200 (its body is ignored, as
        the App does)."""
        body = results.build_result_request(entries, app_string=app_string)
        response = await self._request("POST", self._task_url("result"), body, JSON_CONTENT_TYPE)
        return response.status_code == 200

    async def alert(self, message: str) -> None:
        """E8: a form ``Task=alert`` POST without ``task`` query (G-18)."""
        body = inbound.encode_alert(message, self.config.secret or None)
        response = await self._request("POST", self._plain_url, body, FORM_CONTENT_TYPE)
        if not response.is_success:
            raise ProtocolError(f"{self.name}: alert got HTTP {response.status_code}")

    async def probe(self) -> int | None:
        """A plain GET of the Sync URL (query code ``@20``): the status, or None."""
        try:
            response = await self._request("GET", self._plain_url)
        except ProtocolError:
            return None
        return response.status_code


def _describe(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = ["DEFAULT_USER_AGENT", "BodyFormat", "Contact", "SyncClient"]
