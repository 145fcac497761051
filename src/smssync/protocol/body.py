"""Bodies: chosen by content, not label (S-3), decoded leniently (S-4); encoded like OkHttp."""

from __future__ import annotations

from smssync.messages import BodyFormat

#: Largest body the server accepts (S-3 requires at least 1 MiB).
MAX_BODY_BYTES = 1024 * 1024


def detect_format(raw: bytes) -> BodyFormat:
    """First non-blank byte ``{`` is JSON, ``<`` is XML, anything else form (S-3)."""
    raise NotImplementedError


def decode_text(raw: bytes, content_type: str | None) -> str:
    """Decode as UTF-8 unless the charset says otherwise; invalid bytes become U+FFFD."""
    raise NotImplementedError


def parse_fields(raw: bytes, content_type: str | None) -> dict[str, str]:
    """Turn a body into flat string fields, the first of repeated keys winning (S-4).

    JSON: one object; string values as they are, numbers keep their JSON text, booleans as
    ``true``/``false``, ``null`` is absent; nested values raise. XML: each child of the root is
    a field, an empty element is ``""``; DTDs and entities refused. Form: blank values kept.
    Raises ProtocolError (with a short reason) for a body that cannot be read as fields.
    An empty body gives ``{}``.
    """
    raise NotImplementedError


def form_encode(pairs: list[tuple[str, str]]) -> bytes:
    """Encode like OkHttp's FormBody: every byte but ``A-Z a-z 0-9 * - . _`` percent-encoded
    as UTF-8 (space is ``%20``), pairs joined with ``&``."""
    raise NotImplementedError


def json_encode_app(pairs: list[tuple[str, str]]) -> bytes:
    """Encode like Android's org.json: one flat object, string values, keys in order,
    ``/`` escaped as ``\\/``."""
    raise NotImplementedError


def xml_encode_app(pairs: list[tuple[str, str]]) -> bytes:
    """Encode like Android's XmlSerializer: the App's XML declaration, then
    ``<payload><key>value</key>...</payload>``, text escaped."""
    raise NotImplementedError
