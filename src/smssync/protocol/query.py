"""Query strings as the App builds them (§2.1) and as the server reads them (S-2)."""

from __future__ import annotations


def parse_query(raw_query: str) -> dict[str, str]:
    """Parse everything after the first ``?``: extra ``?`` become ``&``, ``+`` and ``%20`` are
    spaces, blank values kept, the first occurrence of a repeated key wins (S-2).

    ``raw_query`` is the part after the first ``?`` (it may itself contain ``?``).
    """
    raise NotImplementedError


def task_url(sync_url: str, task: str | None, secret: str | None) -> str:
    """Build a task URL as G-4 says: ``?`` or ``&`` as the Sync URL needs, ``task=<task>``,
    then ``&secret=`` URLEncoder-style (space ``+``) only when the secret is non-empty.
    The userinfo is removed from the URL (it goes in a header). ``task=None`` adds nothing
    but the secret rule is not applied either (plain URL without userinfo).
    """
    raise NotImplementedError


def split_userinfo(sync_url: str) -> tuple[str, str | None]:
    """Return the URL without userinfo and the ``Authorization: Basic ...`` value for it
    (percent-decoded ``user:pass``), or None when the URL has no userinfo (G-3)."""
    raise NotImplementedError


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """Split an ``Authorization: Basic`` header at the first ``:`` into (user, password);
    None when absent or not Basic. Raises ProtocolError for undecodable base64."""
    raise NotImplementedError
