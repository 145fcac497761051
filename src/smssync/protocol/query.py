"""Query strings as the App builds them (§2.1) and as the server reads them (S-2)."""

from __future__ import annotations

import base64
import binascii
import codecs
from urllib.parse import unquote, unquote_plus

from smssync.errors import ProtocolError

_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#: Bytes java.net.URLEncoder leaves alone (space becomes ``+`` separately).
URLENCODER_SAFE = frozenset(_ALNUM + b".-*_")
#: Bytes OkHttp's FormBody leaves alone; unlike Python's quote(), ``~`` is encoded.
OKHTTP_FORM_SAFE = frozenset(_ALNUM + b"*-._")


def percent_encode(text: str, safe: frozenset[int], space_as_plus: bool = False) -> str:
    """Percent-encode the UTF-8 bytes of ``text`` (uppercase hex), keeping ``safe`` bytes.

    urllib's quote() cannot do this: it always keeps ``~``, which both Java encoders escape.
    A lone surrogate becomes ``?`` as in Java.
    """
    out: list[str] = []
    for byte in text.encode("utf-8", "replace"):
        if byte in safe:
            out.append(chr(byte))
        elif byte == 0x20 and space_as_plus:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def form_decode(text: str, encoding: str = "utf-8") -> dict[str, str]:
    """Decode ``a=1&b=`` pairs: ``+`` and ``%20`` are spaces, blank values kept (a key without
    ``=`` too), the first occurrence of a repeated key wins (S-2, S-4)."""
    # When nothing decodes to a separator (UTF-8 sequences hold no byte below 0x80, and an
    # escape never spans a raw "&" or "="), the whole text decodes in one call and splits
    # afterwards, as each piece alone would have: an incomplete sequence ends at the
    # separator either way. Every body the App sends takes this way.
    whole = encoding == "utf-8" and "%26" not in text and "%3D" not in text and "%3d" not in text
    if whole:
        text = _unquote(text, encoding)
    fields: dict[str, str] = {}
    for part in text.split("&"):
        if not part:
            continue
        raw_key, _, raw_value = part.partition("=")
        key = raw_key if whole else _unquote(raw_key, encoding)
        if key not in fields:
            fields[key] = raw_value if whole else _unquote(raw_value, encoding)
    return fields


def _unquote(text: str, encoding: str) -> str:
    """``unquote_plus(text, encoding, "replace")``, at a fraction of its cost.

    It is the hottest call of every incoming SMS. Most keys and many values need no
    decoding; an ASCII value with escapes becomes ``\\xNN`` escapes that the C codec used by
    pickle decodes in one call (a backslash of the text is escaped first). Anything else (a
    ``%`` without two hex digits, raw non-ASCII text) takes urllib's way.
    """
    if "%" not in text:
        return text.replace("+", " ") if "+" in text else text
    if text.isascii():
        escaped = text.replace("+", " ").replace("\\", "\\\\").replace("%", "\\x")
        try:
            raw: bytes = codecs.escape_decode(escaped.encode("ascii"))[0]
            return raw.decode(encoding, "replace")
        except (ValueError, LookupError):
            pass
    return unquote_plus(text, encoding, "replace")


def without_nul(fields: dict[str, str]) -> dict[str, str]:
    """Replace NUL characters by U+FFFD: PostgreSQL text cannot hold them, and no SMS has one."""
    # One search over all the text in C: this runs for every request.
    if "\x00" not in "".join(fields) and "\x00" not in "".join(fields.values()):
        return fields
    return {k.replace("\x00", "\ufffd"): v.replace("\x00", "\ufffd") for k, v in fields.items()}


def parse_query(raw_query: str) -> dict[str, str]:
    """Parse everything after the first ``?``: extra ``?`` become ``&``, ``+`` and ``%20`` are
    spaces, blank values kept, the first occurrence of a repeated key wins (S-2).

    ``raw_query`` is the part after the first ``?`` (it may itself contain ``?``).
    """
    # A Sync URL with its own query makes the App write a second "?" (§2.1).
    return without_nul(form_decode(raw_query.replace("?", "&")))


def _split_url(url: str) -> tuple[str, str, str, str]:
    """Split into (scheme plus ``//``, userinfo or "", host and port, rest) without
    normalising anything, so the URL is sent exactly as configured."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return "", "", "", url
    start = scheme_end + 3
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start)
        if found >= 0:
            end = min(end, found)
    authority = url[start:end]
    userinfo, at, host = authority.rpartition("@")
    return url[:start], userinfo if at else "", host, url[end:]


def task_url(sync_url: str, task: str | None, secret: str | None) -> str:
    """Build a task URL as G-4 says: ``?`` or ``&`` as the Sync URL needs, ``task=<task>``,
    then ``&secret=`` URLEncoder-style (space ``+``) only when the secret is non-empty.
    The userinfo is removed from the URL (it goes in a header). ``task=None`` adds nothing
    but the secret rule is not applied either (plain URL without userinfo).
    """
    url, _ = split_userinfo(sync_url)
    if task is None:
        return url
    base, hash_mark, fragment = url.partition("#")
    query = "task=" + percent_encode(task, URLENCODER_SAFE, space_as_plus=True)
    if secret:
        query += "&secret=" + percent_encode(secret, URLENCODER_SAFE, space_as_plus=True)
    if "?" not in base:
        separator = "?"
    elif base.endswith(("?", "&")):
        separator = ""
    else:
        separator = "&"
    return base + separator + query + hash_mark + fragment


def split_userinfo(sync_url: str) -> tuple[str, str | None]:
    """Return the URL without userinfo and the ``Authorization: Basic ...`` value for it
    (percent-decoded ``user:pass``), or None when the URL has no userinfo (G-3)."""
    prefix, userinfo, host, rest = _split_url(sync_url)
    if not userinfo:
        return sync_url, None
    user, _, password = userinfo.partition(":")
    # Userinfo is percent-encoded but "+" is literal there, so unquote, not unquote_plus.
    plain = f"{unquote(user, 'utf-8', 'replace')}:{unquote(password, 'utf-8', 'replace')}"
    token = base64.b64encode(plain.encode("utf-8")).decode("ascii")
    return prefix + host + rest, f"Basic {token}"


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """Split an ``Authorization: Basic`` header at the first ``:`` into (user, password);
    None when absent or not Basic. Raises ProtocolError for undecodable base64."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        plain = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad basic auth") from None
    text = plain.decode("utf-8", "replace").replace("\x00", "\ufffd")
    user, colon, password = text.partition(":")
    if not colon:
        # RFC 7617 requires the colon; without it there is no password to check.
        raise ProtocolError("bad basic auth")
    return user, password
