"""The one exception tree of smssync.

::

    SmssyncError
     ├── ProtocolError          a request or reply does not follow the SMSsync wire format
     ├── ConfigError            a setting or config file is wrong
     ├── StoreError             the database failed
     │    └── StoreUnavailable  the database could not commit now; retry later
     ├── NotFound               the named device or message does not exist
     ├── Conflict               the change clashes with what is stored
     └── BackendError           a phone, modem or simulated network failed
"""

from __future__ import annotations


class SmssyncError(Exception):
    """smssync failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        """Return the human-readable reason."""
        return str(self.args[0])


class ProtocolError(SmssyncError):
    """The request does not follow the SMSsync wire format."""

    def __init__(self, message: str | None = None, fields: list[str] | None = None) -> None:
        super().__init__(message)
        #: Every field that was wrong, for the one error shape.
        self.fields: list[str] = list(fields or [])


class ConfigError(SmssyncError):
    """The configuration is wrong."""


class StoreError(SmssyncError):
    """The database failed."""


class StoreUnavailable(StoreError):
    """The database could not commit the change now; try again."""


class NotFound(SmssyncError):
    """No such object."""


class Conflict(SmssyncError):
    """The change clashes with what is stored."""


class BackendError(SmssyncError):
    """The device backend failed."""

    def __init__(self, message: str | None = None, sent_code: int = 1) -> None:
        super().__init__(message)
        #: The Android sent code this failure maps to (spec §4.1, G-14).
        self.sent_code = sent_code
