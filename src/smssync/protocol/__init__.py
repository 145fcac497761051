"""The SMSsync wire format, both directions, with no I/O.

The server parses requests and builds replies with it; the gateway builds requests and parses
replies with the same functions, so there is one description of the wire format. Nothing in
this package opens a socket, a file or a database (a test walks the imports to keep it so).

Modules:
    query      S-2 query parsing; G-4 task URL building; Basic auth from URL userinfo
    body       S-3/S-4 body decoding (form, JSON, XML chosen by content); OkHttp form encoding
    inbound    E1/E3/E8 request classification and building
    tasks      E2/E4 replies, E5 request and reply, E6 reply
    results    E7 request both encodings; §4.1 result codes and texts; S-33 mapping
    timestamps S-12/S-34 parsing; the App's en-US date form
    replies    the reply envelope (S-16, S-20)
"""

from __future__ import annotations
