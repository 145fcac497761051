"""The one exception tree of smssync, with the HTTP status each is answered with.

::

    SmssyncError                   500  (its message stays in the log: "internal error")
     ├── ProtocolError             400  a request or reply does not follow the SMSsync wire format
     ├── ConfigError               500  a setting or config file is wrong
     ├── StoreError                500  the database failed
     │    └── StoreUnavailable     503  the database could not commit now; retry later
     ├── NotFound                  404  the named device or message does not exist
     ├── Conflict                  409  the change clashes with what is stored
     ├── BackendError              500  a phone, modem or simulated network failed
     └── Refused                        a request the server answers with an error, as is
          ├── InternalError        500  a bug, or one of the errors above: details in the log
          ├── BadRequest           400  a parameter, field or body is wrong
          ├── InvalidKey           401  no API key, or an unknown one
          ├── Unauthorized         403  the request could not be tied to a device
          │    └── BasicUnauthorized  401  wrong HTTP Basic credentials (with a challenge)
          ├── Forbidden            403  the API key lacks the scope
          │    └── DeviceDisabled  403  an admin disabled this phone
          ├── MethodNotAllowed     405
          ├── RequestTimeout       408  the request did not arrive whole in time
          ├── BodyTooLarge         413
          ├── Throttled            429  too many failed authentications from this address
          ├── HeadersTooLarge      431  request line and headers too long, or too many fields
          ├── Unavailable          503  storage or server unavailable; retry after Retry-After
          └── Disconnected              the client hung up: nobody is left to answer

``status`` is the one table from exception to HTTP status. The phone's and the API's error
shapes are rendered from these by ``server.shapes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class SmssyncError(Exception):
    """smssync failed."""

    #: The HTTP status of a request that fails with this error.
    status: ClassVar[int] = 500
    #: Whether the message may be shown to the client (else: "internal error").
    public: ClassVar[bool] = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        """Return the human-readable reason."""
        return str(self.args[0])


class ProtocolError(SmssyncError):
    """The request does not follow the SMSsync wire format."""

    status = 400
    public = True

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

    status = 503


class NotFound(SmssyncError):
    """No such object."""

    status = 404
    public = True


class Conflict(SmssyncError):
    """The change clashes with what is stored."""

    status = 409
    public = True


class BackendError(SmssyncError):
    """The device backend failed."""

    def __init__(self, message: str | None = None, sent_code: int = 1) -> None:
        super().__init__(message)
        #: The Android sent code this failure maps to (spec §4.1, G-14).
        self.sent_code = sent_code


class DriverMissing(BackendError):
    """A backend's optional package is not installed."""

    def __init__(self, package: str, extra: str, backend: str) -> None:
        super().__init__(f"{package} is not installed (the {backend} backend needs it)")
        #: The package extra that brings it: ``smssync[<extra>]``.
        self.extra = extra


class SimLocked(BackendError):
    """The SIM is locked: nothing SMS works until it is unlocked."""


class PinNeeded(SimLocked):
    """The SIM asks for its PIN and none is configured."""


class PinRejected(SimLocked):
    """The SIM refused the configured PIN (entered once, never retried)."""


class PukNeeded(SimLocked):
    """The SIM is locked to its PUK (too many wrong PINs)."""


class Refused(SmssyncError):
    """The request was refused."""

    status = 400
    public = True

    def __init__(
        self,
        message: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        #: The API's list of bad fields (``{"field": ..., "message": ...}``).
        self.errors: list[dict[str, Any]] = list(errors or [])
        #: Response headers the refusal needs (Retry-After, Allow, WWW-Authenticate).
        self.headers: dict[str, str] = dict(headers or {})


class InternalError(Refused):
    """internal error"""

    status = 500


class BadRequest(Refused):
    """Invalid request."""


class InvalidKey(Refused):
    """Invalid API key."""

    status = 401

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"www-authenticate": 'Bearer realm="smssync"'})


class Unauthorized(Refused):
    """unauthorized"""

    status = 403
    #: Wrong Basic credentials were sent (``BasicUnauthorized``).
    basic_failed: ClassVar[bool] = False

    def __init__(self, target: str | None = None) -> None:
        challenge = {"www-authenticate": 'Basic realm="smssync"'} if self.basic_failed else None
        super().__init__(headers=challenge)
        #: What was guessed at, when known (a device, a Basic user): throttled on its own.
        self.target = target


class BasicUnauthorized(Unauthorized):
    """unauthorized"""

    #: Answered 401 with a challenge (S-8).
    status = 401
    basic_failed = True


class Forbidden(Refused):
    """Forbidden."""

    status = 403


class DeviceDisabled(Forbidden):
    """this phone is disabled"""


class MethodNotAllowed(Refused):
    """method not allowed"""

    status = 405

    def __init__(self, message: str | None, allowed: list[str]) -> None:
        super().__init__(message, headers={"allow": ", ".join(allowed)})


class RequestTimeout(Refused):
    """request timeout"""

    status = 408

    def __init__(self) -> None:
        super().__init__(headers={"connection": "close"})


class BodyTooLarge(Refused):
    """body too large"""

    status = 413


class Throttled(Refused):
    """too many failed attempts, retry later"""

    status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(headers={"retry-after": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class HeadersTooLarge(Refused):
    """request header fields too large"""

    status = 431

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"connection": "close"})


class Unavailable(Refused):
    """server stopping, retry later"""

    status = 503

    def __init__(self, message: str | None = None, retry_after_s: int | None = 5) -> None:
        retry = {"retry-after": str(retry_after_s)} if retry_after_s is not None else None
        super().__init__(message, headers=retry)


class Disconnected(Refused):
    """The client hung up before its body arrived; nobody is left to answer."""
