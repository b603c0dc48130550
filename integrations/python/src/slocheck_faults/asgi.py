"""ASGI middleware (Starlette, FastAPI, any ASGI app) for the slocheck fault
protocol. Add it *inside* the app's metrics middleware so the metrics see
injected errors and delays exactly like real ones."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, MutableMapping, Optional

from .protocol import (
    APPLIED_HEADER,
    FAULT_HEADER,
    Fault,
    FaultHeaderError,
    honoured,
    injected_body,
    parse,
    resolve_token,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("slocheck_faults")

_FAULT = FAULT_HEADER.encode()
_APPLIED = APPLIED_HEADER.encode()


class SlocheckFaultMiddleware:
    """Honours `x-slocheck-fault: status=503`, `delay=300ms` or both: waits,
    then answers with the status instead of calling the app (or calls the
    app after the delay), and acknowledges with `x-slocheck-fault-applied`.

    `token`: shared token that lets peers other than the host itself inject
    faults (default: $SLOCHECK_FAULT_TOKEN; none: only 127.0.0.1 / ::1).
    """

    def __init__(self, app: Callable[..., Awaitable[None]], token: Optional[str] = None) -> None:
        self.app = app
        self.token = resolve_token(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self._requested(scope) if scope.get("type") == "http" else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay_us:
            await asyncio.sleep(fault.delay_seconds)
        ack = (_APPLIED, fault.encode().encode())
        if fault.status is not None:
            await _answer(send, fault.status, ack)
            return

        async def send_with_ack(message: Message) -> None:
            if message.get("type") == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [ack]
            await send(message)

        await self.app(scope, receive, send_with_ack)

    def _requested(self, scope: Scope) -> Optional[Fault]:
        raw = [v for k, v in scope.get("headers", []) if k.lower() == _FAULT]
        if not raw:
            return None
        client = scope.get("client")
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        if not honoured(client[0] if client else None, headers, self.token):
            return None
        try:
            if len(raw) > 1:
                raise FaultHeaderError("fault header is given more than once")
            return parse(raw[0].decode("latin-1"))
        except FaultHeaderError as e:
            log.warning("slocheck_faults: ignoring the request's fault: %s", e)
            return None


async def _answer(send: Send, status: int, ack: tuple) -> None:
    body = injected_body(status)
    headers = [ack]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

