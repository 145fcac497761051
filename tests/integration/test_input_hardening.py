"""Issue 14, findings 5, 7, 8 and 12 over both stores: bad input gets a clear 4xx.

Charsets that are no text encoding, API bodies over the limit, the docs paths that needed no
key, 405 without ``Allow``, and API fields that were coerced instead of refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from smssync.store import inbox
from smssync.store.engine import Database
from tests.integration.api_helpers import JSON, bearer, phone
from tests.integration.test_api_messages import assert_error

FORM = "application/x-www-form-urlencoded"
SMS = b"from=%2B254700000001&message=%2B2AD-x&message_id=m1"


@pytest.mark.parametrize(
    "charset", ["utf-7", "unicode_escape", "raw-unicode-escape", "base64", "rot13", "nonsense"]
)
async def test_charsets_that_are_no_text_encoding_get_400_and_nothing_is_stored(
    api_client: httpx.AsyncClient, store: Database, charset: str
) -> None:
    url = await phone(store)
    reply = await api_client.post(
        url, content=SMS, headers={"content-type": f"{FORM}; charset={charset}"}
    )
    assert reply.status_code == 400
    assert reply.json() == {
        "payload": {"success": False, "error": f"unsupported charset {charset!r}"}
    }
    assert await inbox.list_inbound(store) == []
    # Without credentials the charset is not even looked at (S-1: authentication first).
    reply = await api_client.post(
        "/smssync", content=SMS, headers={"content-type": f"{FORM}; charset={charset}"}
    )
    assert reply.status_code == 403


async def test_text_from_a_real_charset_is_stored_as_valid_unicode(
    api_client: httpx.AsyncClient, store: Database
) -> None:
    url = await phone(store)
    body = "from=%2B254700000001&message=caf\xe9 %E9&message_id=l1".encode("latin-1")
    reply = await api_client.post(
        url, content=body, headers={"content-type": f"{FORM}; charset=latin-1"}
    )
    assert reply.status_code == 200, reply.text
    # A JSON escape of a lone surrogate becomes U+FFFD (S-3), in the key as in the value.
    reply = await api_client.post(
        url,
        content=b'{"from":"+254700000002","message":"a\\ud800b","message_id":"j1"}',
        headers=JSON,
    )
    assert reply.status_code == 200, reply.text
    stored = {m.message_id: m.content for m in await inbox.list_inbound(store)}
    assert stored == {"l1": "café é", "j1": "a\ufffdb"}


async def test_api_charsets_other_than_utf8_get_400(
    api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    body = b'{"to": "+254700000001", "body": "hi"}'
    for charset, error in (
        ("utf-7", "unsupported charset 'utf-7'"),
        ("base64", "unsupported charset 'base64'"),
        ("latin-1", "JSON bodies are UTF-8, not iso8859-1"),
    ):
        reply = await api_client.post(
            "/api/v1/messages",
            content=body,
            headers={
                **bearer(keys["send"]),
                "content-type": f"application/json; charset={charset}",
            },
        )
        assert_error(reply, 400)
        assert reply.json()["error"] == error
    reply = await api_client.post(
        "/api/v1/messages",
        content=body,
        headers={**bearer(keys["send"]), "content-type": "application/json; charset=UTF-8"},
    )
    assert reply.status_code == 201, reply.text


async def test_api_bodies_over_the_limit_get_413(
    api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    headers = {**bearer(keys["send"]), **JSON}
    big = b'{"to": "+254700000001", "body": "hi"}' + b" " * (1024 * 1024)
    assert_error(await api_client.post("/api/v1/messages", content=big, headers=headers), 413)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(3):
            yield b" " * 500_000

    reply = await api_client.post("/api/v1/messages", content=chunked(), headers=headers)
    assert_error(reply, 413)
    # Declared too large, it is refused before the key is looked at: nothing is read.
    assert_error(await api_client.post("/api/v1/messages", content=big, headers=JSON), 413)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/messages/docs",
        "/api/v1/messages/openapi.json",
        "/api/v1/webhooks/docs",
        "/api/v1/nowhere/openapi.json",
        "/api/v1/docs/",
    ],
)
async def test_only_the_docs_themselves_are_readable_without_a_key(
    api_client: httpx.AsyncClient, path: str
) -> None:
    for method in ("GET", "DELETE", "POST"):
        assert_error(await api_client.request(method, path), 401)
    assert (await api_client.get("/api/v1/docs")).status_code == 200
    assert (await api_client.get("/api/v1/openapi.json")).status_code == 200


async def test_405_says_which_methods_are_allowed(
    api_client: httpx.AsyncClient, store: Database, keys: dict[str, str]
) -> None:
    url = await phone(store)
    for method, target, allowed in (
        ("DELETE", url, "GET, POST, PUT"),
        ("DELETE", "/smssync", "GET, POST, PUT"),
        ("PUT", f"{url}?task=send", "GET"),
        ("GET", f"{url}?task=sent", "POST"),
        ("DELETE", f"{url}?task=result", "GET, POST"),
    ):
        reply = await api_client.request(method, target)
        assert reply.status_code == 405 and reply.headers["allow"] == allowed, (method, target)
    reply = await api_client.put("/api/v1/messages", headers=bearer(keys["admin"]))
    assert_error(reply, 405)
    assert set(reply.headers["allow"].split(", ")) == {"GET", "POST"}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/api/v1/messages?until=0.5", None, "query.until"),
        ("GET", "/api/v1/messages?since=1700000000", None, "query.since"),
        ("POST", "/api/v1/webhooks/dead-letters/redrive", {"all": 0}, "body.all"),
        ("POST", "/api/v1/webhooks/dead-letters/redrive", {"all": "true"}, "body.all"),
        ("POST", "/api/v1/webhooks/dead-letters/redrive", {"ids": ["1"]}, "body.ids.0"),
        (
            "POST",
            "/api/v1/messages",
            {"to": "+254700000001", "body": "x", "priority": "5"},
            "body.priority",
        ),
        (
            "POST",
            "/api/v1/messages",
            {"to": "+254700000001", "body": "x", "priority": 1.0},
            "body.priority",
        ),
        (
            "POST",
            "/api/v1/messages",
            {"to": "+254700000001", "body": "x", "send_at": 0},
            "body.send_at",
        ),
        (
            "POST",
            "/api/v1/rules",
            {"kind": "keyword", "pattern": "a", "tag": "t", "position": "1"},
            "body.position",
        ),
    ],
)
async def test_wrong_types_are_refused_not_coerced(
    api_client: httpx.AsyncClient,
    keys: dict[str, str],
    method: str,
    path: str,
    body: object,
    field: str,
) -> None:
    reply = await api_client.request(method, path, json=body, headers=bearer(keys["admin"]))
    assert_error(reply, 400)
    assert [e["field"] for e in reply.json()["errors"]] == [field]


async def test_the_schema_documents_the_errors_each_route_gives(
    api_client: httpx.AsyncClient,
) -> None:
    spec = (await api_client.get("/api/v1/openapi.json")).json()
    operations = {
        (method.upper(), path): set(op["responses"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    for (method, path), statuses in operations.items():
        # Validation errors are answered 400 in the error shape, never FastAPI's 422.
        assert "422" not in statuses, (method, path)
        assert {"400", "401", "403", "429", "503"} <= statuses, (method, path)
        assert ("413" in statuses) == (method == "POST"), (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)
    assert "409" in operations["POST", "/messages"]
    assert "409" in operations["DELETE", "/messages/{uuid}"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = spec["paths"]["/messages"]["post"]["responses"]["413"]["content"]["application/json"]
    assert error["schema"]["$ref"].endswith("/ErrorBody")
