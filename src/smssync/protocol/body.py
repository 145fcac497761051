"""Bodies: chosen by content, not label (S-3), decoded leniently (S-4); encoded like OkHttp."""

from __future__ import annotations

import codecs
import functools
import json
import re
from typing import NoReturn
from xml.parsers import expat

from smssync.errors import ProtocolError
from smssync.protocol.query import OKHTTP_FORM_SAFE, form_decode, percent_encode, without_nul
from smssync.records import BodyFormat

#: Largest body the server accepts (S-3 requires at least 1 MiB).
MAX_BODY_BYTES = 1024 * 1024

_BLANK = b" \t\r\n\f\v"
_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)
#: Characters XML 1.0 cannot carry at all, not even as character references.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>"


def detect_format(raw: bytes) -> BodyFormat:
    """First non-blank byte ``{`` is JSON, ``<`` is XML, anything else form (S-3)."""
    head = raw.removeprefix(_BOM).lstrip(_BLANK)[:1]
    if head == b"{":
        return BodyFormat.JSON
    if head == b"<":
        return BodyFormat.XML
    return BodyFormat.FORM


#: Text codecs Python knows that are no charset of a body: escape notations that yield lone
#: surrogates (utf-7, unicode-escape), or that raise even under "replace" (idna, punycode).
_NOT_CHARSETS = frozenset(
    {"utf-7", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)


@functools.lru_cache(maxsize=64)
def body_charset(content_type: str | None) -> str:
    """Return the codec named by a Content-Type's charset parameter, ``utf-8`` without one.

    Raises ProtocolError for a charset that is no text encoding: unknown, a byte transform
    (``base64``, ``rot13``) or one of ``_NOT_CHARSETS``. Remembered (a miss costs a codec
    lookup): every request asks, and the cache's size bounds what clients can make it hold.
    """
    match = _CHARSET.search(content_type or "")
    if not match:
        return "utf-8"
    label = match.group(1)
    try:
        codec = codecs.lookup(label)
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        codec = None
    # _is_text_encoding is the flag bytes.decode itself checks to refuse base64 and rot13.
    if codec is None or not codec._is_text_encoding or codec.name in _NOT_CHARSETS:
        raise ProtocolError(f"unsupported charset {label[:40]!r}")
    return codec.name


def decode_text(raw: bytes, content_type: str | None) -> str:
    """Decode as UTF-8 unless the charset says otherwise; invalid bytes become U+FFFD, and
    so do lone surrogates, which no stored text may hold (S-3).

    Raises ProtocolError for a charset that is no text encoding.
    """
    codec = body_charset(content_type)
    text = raw.decode(codec, "replace")
    # UTF-8 never decodes to a surrogate; other codecs are checked rather than trusted.
    return text if codec == "utf-8" else _SURROGATE.sub("\ufffd", text)


def _clean(text: str) -> str:
    """Replace lone surrogates (from JSON ``\\ud800`` escapes) and NUL by U+FFFD: neither can
    be stored (UTF-8 cannot carry the one, PostgreSQL text not the other)."""
    return _SURROGATE.sub("\ufffd", text)


def _cleaned(value: object) -> object:
    """Clean strings inside lists at any depth (objects are cleaned by their hook already).

    Iterative and in place, on lists json just built: deep nesting must not overflow the stack.
    """
    if isinstance(value, str):
        return _clean(value)
    stack = [value] if isinstance(value, list) else []
    while stack:
        items = stack.pop()
        for index, item in enumerate(items):
            if isinstance(item, str):
                items[index] = _clean(item)
            elif isinstance(item, list):
                stack.append(item)
    return value


def _first_key_wins(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        obj.setdefault(_clean(key), _cleaned(value))
    return obj


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def load_json(text: str) -> object:
    """Parse JSON leniently but safely: numbers keep their JSON text (as str), the first of
    repeated keys wins, ``NaN`` is refused, lone surrogates become U+FFFD.

    Raises ProtocolError when the text is not one JSON value.
    """
    try:
        value: object = json.loads(
            text.removeprefix("\ufeff"),
            object_pairs_hook=_first_key_wins,
            parse_int=str,
            parse_float=str,
            parse_constant=_reject_constant,
        )
        return _cleaned(value)
    except (ValueError, RecursionError):
        # RecursionError: a 1 MiB body can nest deeper than the parser's stack.
        raise ProtocolError("body is not valid JSON") from None


def load_json_object(raw: bytes) -> dict[str, object]:
    """Parse a UTF-8 body that must be one JSON object; ProtocolError otherwise."""
    value = load_json(raw.decode("utf-8", "replace"))
    if not isinstance(value, dict):
        raise ProtocolError("body is not a JSON object")
    return value


def _json_fields(text: str) -> dict[str, str]:
    value = load_json(text)
    if not isinstance(value, dict):
        raise ProtocolError("body is not a JSON object")
    fields: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue  # null counts as absent (S-4)
        if isinstance(item, bool):
            fields[key] = "true" if item else "false"
        elif isinstance(item, str):
            fields[key] = item
        else:
            # An object or list where a string belongs: keep its JSON text rather than
            # reject the SMS, which only a body without from and message may be (S-11).
            fields[key] = dump_json(item).decode()
    return without_nul(fields)


def _forbid(*_args: object) -> NoReturn:
    # Entity expansion and external entities are how XML bodies attack servers (S-4).
    raise ProtocolError("XML with DTD or entities refused")


def _xml_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    depth = 0
    current: str | None = None
    chunks: list[str] = []

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal depth, current
        depth += 1
        if depth == 2:
            current = name
            chunks.clear()

    def end(_name: str) -> None:
        nonlocal depth, current
        if depth == 2 and current is not None:
            fields.setdefault(current, "".join(chunks))
            current = None
        depth -= 1

    def data(chunk: str) -> None:
        # Text of nested elements counts too (like itertext()); text in the root does not.
        if depth >= 2:
            chunks.append(chunk)

    # The text is already decoded (invalid bytes are U+FFFD), so force UTF-8 whatever the
    # declaration says.
    parser = expat.ParserCreate(encoding="UTF-8")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        parser.Parse(text.removeprefix("\ufeff").encode("utf-8", "replace"), True)
    except expat.ExpatError:
        raise ProtocolError("body is not well-formed XML") from None
    return fields


def parse_fields(raw: bytes, content_type: str | None) -> dict[str, str]:
    """Turn a body into flat string fields, the first of repeated keys winning (S-4).

    JSON: one object; string values as they are, numbers keep their JSON text, booleans as
    ``true``/``false``, ``null`` is absent; nested values keep their JSON text. XML: each
    child of the root is a field, an empty element is ``""``; DTDs and entities refused.
    Form: blank values kept. NUL becomes U+FFFD everywhere.
    Raises ProtocolError (with a short reason) for a body that cannot be read as fields.
    An empty body gives ``{}``.
    """
    if not raw.removeprefix(_BOM).strip(_BLANK):
        return {}
    text = decode_text(raw, content_type).removeprefix("\ufeff")
    fmt = detect_format(raw)
    if fmt is BodyFormat.JSON:
        return _json_fields(text)
    if fmt is BodyFormat.XML:
        return _xml_fields(text)
    # Trailing newlines from hand-made clients (curl -d @file) are not part of the last value.
    codec = body_charset(content_type)
    fields = form_decode(text.strip(), codec)
    if codec != "utf-8":  # percent-escapes decode through the codec too
        fields = {_clean(key): _clean(value) for key, value in fields.items()}
    return without_nul(fields)


def form_encode(pairs: list[tuple[str, str]]) -> bytes:
    """Encode like OkHttp's FormBody: every byte but ``A-Z a-z 0-9 * - . _`` percent-encoded
    as UTF-8 (space is ``%20``), pairs joined with ``&``."""
    return "&".join(
        f"{percent_encode(key, OKHTTP_FORM_SAFE)}={percent_encode(value, OKHTTP_FORM_SAFE)}"
        for key, value in pairs
    ).encode("ascii")


def _org_json_string(text: str) -> str:
    """Quote like Android's JSONStringer: ``"``, ``\\`` and every ``/`` escaped."""
    out = ['"']
    for char in text:
        if char in '"\\/':
            out.append("\\" + char)
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {"\t": "\\t", "\b": "\\b", "\n": "\\n", "\r": "\\r", "\f": "\\f"}


def json_encode_app(pairs: list[tuple[str, str]]) -> bytes:
    """Encode like Android's org.json: one flat object, string values, keys in order,
    ``/`` escaped as ``\\/``."""
    members = ",".join(f"{_org_json_string(k)}:{_org_json_string(v)}" for k, v in pairs)
    return ("{" + members + "}").encode("utf-8", "replace")


def _xml_text(text: str) -> str:
    # "\r" as a reference: parsers turn a literal CR into LF. Characters XML cannot carry
    # become U+FFFD so the body stays well-formed.
    text = _XML_ILLEGAL.sub("\ufffd", text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def xml_encode_app(pairs: list[tuple[str, str]]) -> bytes:
    """Encode like Android's XmlSerializer: the App's XML declaration, then
    ``<payload><key>value</key>...</payload>``, text escaped."""
    members = "".join(f"<{k}>{_xml_text(v)}</{k}>" for k, v in pairs)
    return (_XML_DECLARATION + "<payload>" + members + "</payload>").encode("utf-8")


def dump_json(value: object) -> bytes:
    """Encode a reply compactly as UTF-8 with nothing after it (S-16).

    Lone surrogates, which UTF-8 cannot carry, are written as ``\\uXXXX`` escapes.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


#: What Gson's default HTML-safe writer escapes beyond JSON's own needs.
_GSON_ESCAPES = {c: f"\\u{ord(c):04x}" for c in "<>&='\u2028\u2029"}
_GSON_PATTERN = re.compile("[<>&='\u2028\u2029]")


def dump_gson(value: object) -> bytes:
    """Encode like the App's Gson: compact, ``< > & = '`` as ``\\u003c`` etc.

    The escaped characters can only occur inside strings of the output, so replacing them
    after json.dumps cannot touch the JSON structure.
    """
    text = dump_json(value).decode("utf-8")
    return _GSON_PATTERN.sub(lambda m: _GSON_ESCAPES[m.group()], text).encode("utf-8")
