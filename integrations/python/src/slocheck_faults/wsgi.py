"""WSGI middleware (Flask, Django, any WSGI app) for the slocheck fault
protocol. Wrap the app *inside* its metrics middleware so the metrics see
injected errors and delays exactly like real ones."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Optional

from .protocol import (
    APPLIED_HEADER,
    Fault,
    FaultHeaderError,
    honoured,
    injected_body,
    parse,
    reason,
    resolve_token,
)

log = logging.getLogger("slocheck_faults")

_ENVIRON_KEY = "HTTP_X_SLOCHECK_FAULT"


class SlocheckFaultWSGIMiddleware:
    """Honours `x-slocheck-fault: status=503`, `delay=300ms` or both: sleeps,
    then answers with the status instead of calling the app (or calls the
    app after the delay), and acknowledges with `x-slocheck-fault-applied`.

    `token`: shared token that lets peers other than the host itself inject
    faults (default: $SLOCHECK_FAULT_TOKEN; none: only 127.0.0.1 / ::1).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], token: Optional[str] = None) -> None:
        self.app = app
        self.token = resolve_token(token)

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        fault = self._requested(environ)
        if fault is None:
            return self.app(environ, start_response)
        if fault.delay_us:
            time.sleep(fault.delay_seconds)
        ack = (APPLIED_HEADER, fault.encode())
        if fault.status is not None:
            body = injected_body(fault.status)
            headers = [ack]
            if body:
                headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response(f"{fault.status} {reason(fault.status)}", headers)
            return [body]

        def start_with_ack(status: str, headers: list, exc_info: Any = None) -> Any:
            return start_response(status, list(headers) + [ack], exc_info)

        return self.app(environ, start_with_ack)

    def _requested(self, environ: dict) -> Optional[Fault]:
        value = environ.get(_ENVIRON_KEY)
        if value is None:
            return None
        # WSGI joins repeated headers with ", "; the grammar then rejects a
        # repeated key, so a doubled header is refused as in ASGI.
        headers = [
            (k[5:].replace("_", "-").lower(), v)
            for k, v in environ.items()
            if k.startswith("HTTP_") and isinstance(v, str)
        ]
        if not honoured(environ.get("REMOTE_ADDR"), headers, self.token):
            return None
        try:
            return parse(value)
        except FaultHeaderError as e:
            log.warning("slocheck_faults: ignoring the request's fault: %s", e)
            return None
