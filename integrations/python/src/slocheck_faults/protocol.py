"""The slocheck fault protocol (docs/fault-protocol.md): header grammar,
canonical encoding, and the security rule. Framework-free; the ASGI and WSGI
middlewares are thin shells over it.

The grammar, ABNF (RFC 5234), OWS = optional spaces or tabs::

    fault-header = OWS part *( OWS "," OWS part ) OWS
    part         = status-part / delay-part          ; each key at most once
    status-part  = "status" OWS "=" OWS 3DIGIT        ; 200..599
    delay-part   = "delay" OWS "=" OWS 1*DIGIT unit   ; at most 60 s
    unit         = "us" / "ms" / "s"
"""

from __future__ import annotations

import hmac
from http import HTTPStatus
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

FAULT_HEADER = "x-slocheck-fault"
APPLIED_HEADER = "x-slocheck-fault-applied"
TOKEN_HEADER = "x-slocheck-fault-token"
TOKEN_ENV = "SLOCHECK_FAULT_TOKEN"

MAX_DELAY_US = 60_000_000
_OWS = " \t"
_STATUS = re.compile(r"[0-9]{3}", re.ASCII)
_DELAY = re.compile(r"([0-9]+)(us|ms|s)", re.ASCII)
_PER_UNIT_US = {"us": 1, "ms": 1_000, "s": 1_000_000}


class FaultHeaderError(ValueError):
    """A malformed fault header; the message says what is wrong."""


@dataclass(frozen=True)
class Fault:
    """What one request asks for: an HTTP status to answer with instead of
    running the handler, and/or a delay (microseconds) before it."""

    status: Optional[int] = None
    delay_us: Optional[int] = None

    @property
    def delay_seconds(self) -> float:
        return (self.delay_us or 0) / 1e6

    def encode(self) -> str:
        """Canonical form, also the acknowledgement's value: delay first in
        the largest whole unit (s, ms, us), then status."""
        parts = []
        if self.delay_us is not None:
            us = self.delay_us
            if us % 1_000_000 == 0:
                parts.append(f"delay={us // 1_000_000}s")
            elif us % 1_000 == 0:
                parts.append(f"delay={us // 1_000}ms")
            else:
                parts.append(f"delay={us}us")
        if self.status is not None:
            parts.append(f"status={self.status}")
        return ",".join(parts)


def _visible_ascii(value: str) -> bool:
    return all(c == "\t" or " " <= c <= "~" for c in value)


def parse(value: str) -> Fault:
    """Parses a header value; raises FaultHeaderError when malformed."""
    if not _visible_ascii(value):
        raise FaultHeaderError("fault header is not ASCII text")
    if not value.strip(_OWS):
        raise FaultHeaderError(
            "fault header is empty (hint: use `status=503`, `delay=300ms` or both)"
        )
    status: Optional[int] = None
    delay_us: Optional[int] = None
    for raw in value.split(","):
        part = raw.strip(_OWS)
        key, eq, val = part.partition("=")
        if not eq:
            raise FaultHeaderError(f"fault header part `{part}` is not key=value")
        key, val = key.strip(_OWS), val.strip(_OWS)
        if key == "status":
            if status is not None:
                raise FaultHeaderError("fault header key `status` is given twice")
            if not _STATUS.fullmatch(val) or not 200 <= int(val) <= 599:
                raise FaultHeaderError(
                    f"fault header status `{val}` is not a final HTTP status 200..=599"
                )
            status = int(val)
        elif key == "delay":
            if delay_us is not None:
                raise FaultHeaderError("fault header key `delay` is given twice")
            m = _DELAY.fullmatch(val)
            if not m:
                raise FaultHeaderError(
                    f"fault header delay `{val}` is not a whole number with unit us, ms or s"
                )
            us = int(m.group(1)) * _PER_UNIT_US[m.group(2)]
            if us > MAX_DELAY_US:
                raise FaultHeaderError(
                    f"fault header delay `{val}` is longer than the 60s limit"
                )
            delay_us = us
        else:
            raise FaultHeaderError(
                f"fault header key `{key}` is unknown (keys are `status` and `delay`)"
            )
    return Fault(status=status, delay_us=delay_us)


def is_host_itself(peer: Optional[str]) -> bool:
    """127.0.0.1 or ::1 (also as an IPv4-mapped address). Other 127/8
    addresses are not trusted: on a shared host they belong to containers,
    network namespaces or proxies that forward remote traffic. An unknown
    peer (a Unix socket, maybe behind a proxy) is not the host."""
    if not peer:
        return False
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip == ipaddress.IPv4Address("127.0.0.1") or ip == ipaddress.IPv6Address("::1")


def resolve_token(token: Optional[str]) -> Optional[str]:
    """The argument, else $SLOCHECK_FAULT_TOKEN; empty means none."""
    if token is None:
        token = os.environ.get(TOKEN_ENV)
    token = (token or "").strip(_OWS)
    return token or None


def presents_token(headers: Iterable[Tuple[str, str]], token: Optional[str]) -> bool:
    """True when a token is configured and a header presents it:
    `x-slocheck-fault-token: <token>` or `Authorization: Bearer <token>`.
    `headers` are (lowercase name, value) pairs."""
    if not token:
        return False
    want = token.encode()
    for name, value in headers:
        if name == TOKEN_HEADER:
            given = value.strip(_OWS)
        elif name == "authorization" and value.startswith("Bearer "):
            given = value[len("Bearer "):].strip(_OWS)
        else:
            continue
        if hmac.compare_digest(given.encode("latin-1", "replace"), want):
            return True
    return False


def honoured(
    peer: Optional[str], headers: Iterable[Tuple[str, str]], token: Optional[str]
) -> bool:
    """The security rule: the host itself, or any peer presenting the token."""
    headers = list(headers)
    return is_host_itself(peer) or presents_token(headers, token)


def injected_body(status: int) -> bytes:
    """The body of an injected error (none for statuses that forbid one)."""
    if status in (204, 205, 304):
        return b""
    return ('{"error":"injected fault","status":%d}' % status).encode()


def reason(status: int) -> str:
    """The reason phrase for a WSGI status line."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Injected Fault"
