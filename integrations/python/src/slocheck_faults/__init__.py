"""slocheck fault protocol for Python services: add one middleware and
`slocheck run` can inject 5xx errors and delays into your own service, with
your own metrics counting them. See docs/fault-protocol.md."""

from .asgi import SlocheckFaultMiddleware
from .protocol import (
    APPLIED_HEADER,
    FAULT_HEADER,
    TOKEN_ENV,
    TOKEN_HEADER,
    Fault,
    FaultHeaderError,
    honoured,
    parse,
)
from .wsgi import SlocheckFaultWSGIMiddleware

__all__ = [
    "APPLIED_HEADER",
    "FAULT_HEADER",
    "TOKEN_ENV",
    "TOKEN_HEADER",
    "Fault",
    "FaultHeaderError",
    "SlocheckFaultMiddleware",
    "SlocheckFaultWSGIMiddleware",
    "honoured",
    "parse",
]
