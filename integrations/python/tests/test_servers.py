"""The middlewares in real servers on loopback ports: uvicorn for the ASGI
apps (FastAPI with `@app.middleware("http")` metrics, Starlette with
`app.add_middleware` metrics) and gunicorn for the Flask app. Each test runs
against every style (the `server` fixture is parametrized)."""

import re
import time

import httpx
import pytest

from conftest import CASES, TOKEN

PREDICT = "/predict"
# Delays above this are left to the pure grammar tests (they would only slow
# the suite down), and so are values with surrounding whitespace (HTTP
# strips it before any middleware sees it); every other row is sent to
# every server.
MAX_SENT_DELAY_US = 300_000


def get(url, headers=None, local_address=None):
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    with httpx.Client(transport=transport, timeout=10) as c:
        return c.get(url + PREDICT, headers=headers or {})


def sample(text, name, **labels):
    """The value of one exposition line (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


SENT_CASES = [
    c for c in CASES["headers"]
    if c["header"] == c["header"].strip(" \t")
    and (c["fault"] is None or (c["fault"]["delay_us"] or 0) <= MAX_SENT_DELAY_US)
]


@pytest.mark.parametrize("case", SENT_CASES, ids=lambda c: repr(c["header"]))
def test_grammar_and_acknowledgement(server, case):
    r = get(server.url, {"x-slocheck-fault": case["header"]})
    want = case["fault"]
    if want is None:
        assert r.status_code == 200, r.text
        assert "x-slocheck-fault-applied" not in r.headers
        return
    assert r.headers.get("x-slocheck-fault-applied") == case["applied"]
    if want["status"] is None:
        assert r.status_code == 200 and "class" in r.json()
    else:
        assert r.status_code == want["status"]
        if want["status"] not in (204, 205, 304):
            assert r.json() == {"error": "injected fault", "status": want["status"]}


def test_malformed_header_is_logged_not_an_error(server):
    r = get(server.url, {"x-slocheck-fault": "status=700"})
    assert r.status_code == 200
    deadline = time.monotonic() + 5
    while "ignoring the request's fault" not in server.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "fault header status `700`" in server.stderr()


def test_delay_is_applied_before_the_handler(server):
    start = time.monotonic()
    r = get(server.url, {"x-slocheck-fault": "delay=250ms"})
    elapsed = time.monotonic() - start
    assert r.status_code == 200 and r.headers["x-slocheck-fault-applied"] == "delay=250ms"
    assert elapsed >= 0.25, elapsed


def test_metrics_count_injected_errors_and_see_delays(server):
    before = httpx.get(server.url + "/metrics").text
    for _ in range(5):
        assert get(server.url, {"x-slocheck-fault": "status=503"}).status_code == 503
    for _ in range(3):
        get(server.url, {"x-slocheck-fault": "delay=300ms"})
    assert get(server.url, {"x-slocheck-fault": "delay=300ms,status=500"}).status_code == 500
    after = httpx.get(server.url + "/metrics").text

    def diff(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert diff("http_requests_total", path=PREDICT, method="GET", status="503") == 5
    assert diff("http_requests_total", path=PREDICT, method="GET", status="500") == 1
    # Four answers took at least 300 ms: none of them in the 0.25 s bucket.
    count = diff("http_request_latency_seconds_count", path=PREDICT, method="GET")
    fast = diff("http_request_latency_seconds_bucket", path=PREDICT, method="GET", le="0.25")
    assert count == 9 and count - fast >= 4, (count, fast)


def test_peer_other_than_the_host_gets_no_fault_without_token(server):
    # 127.0.0.2 is loopback but not the host itself: it stands for a
    # container, namespace or proxy on the same machine.
    r = get(server.url, {"x-slocheck-fault": "status=503"}, local_address="127.0.0.2")
    assert r.status_code == 200
    assert "x-slocheck-fault-applied" not in r.headers
    # A token presented to a server that has none configured changes nothing.
    r = get(server.url, {"x-slocheck-fault": "status=503", "x-slocheck-fault-token": "x"},
            local_address="127.0.0.2")
    assert r.status_code == 200


def test_forwarded_remote_client_gets_no_fault(server):
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 (a local reverse proxy)
    # and reports the remote client as the peer: that client is refused.
    if not server.name.startswith("uvicorn"):
        pytest.skip("gunicorn reports the proxy's address as REMOTE_ADDR")
    r = get(server.url, {"x-slocheck-fault": "status=503", "x-forwarded-for": "203.0.113.9"})
    assert r.status_code == 200
    assert "x-slocheck-fault-applied" not in r.headers


def test_token_lets_another_peer_inject(server_with_token):
    url = server_with_token.url
    fault = {"x-slocheck-fault": "status=503"}
    assert get(url, fault, local_address="127.0.0.2").status_code == 200
    wrong = {**fault, "x-slocheck-fault-token": "wrong"}
    assert get(url, wrong, local_address="127.0.0.2").status_code == 200
    right = {**fault, "x-slocheck-fault-token": TOKEN}
    r = get(url, right, local_address="127.0.0.2")
    assert r.status_code == 503 and r.headers["x-slocheck-fault-applied"] == "status=503"
    bearer = {**fault, "authorization": f"Bearer {TOKEN}"}
    assert get(url, bearer, local_address="127.0.0.2").status_code == 503
    # The host itself needs no token.
    assert get(url, fault).status_code == 503
