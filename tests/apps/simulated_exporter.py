"""A SIMULATED exporter: a real HTTP server that answers requests like a
model server and exposes its /metrics page in the convention of a server
that cannot run in the test environment (Triton, TorchServe, TF Serving,
Istio, Spring/Micrometer, BentoML, Ray Serve, vLLM, TGI, Seldon,
go-http-metrics, ingress-nginx, Traefik).

Only the exposition is simulated: every request really arrives, really takes
a few milliseconds, and is really answered with the status asked for by its
`x-slocheck-fault: status=NNN` header; the counters and histograms on the
page advance with those requests, in the names, labels and units the real
server uses (see README "Metric presets"). A real Prometheus scrapes it, so
the queries and verdicts the tests check are real.

    python simulated_exporter.py KIND

Binds 127.0.0.1 on a free port and prints `listening on PORT` once ready.
Standard library only.
"""

import http.server
import random
import sys
import threading
import time

KIND = sys.argv[1] if len(sys.argv) > 1 else "triton"

# Bucket bounds in seconds; each convention writes them in its own unit.
BUCKETS_S = [0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
             0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
TRAEFIK_BUCKETS_S = [0.1, 0.3, 1.2, 5.0]

LOCK = threading.Lock()
# status code -> [count, sum of seconds, per-bucket counts]
SEEN = {}
RNG = random.Random(7)


def observe(status, seconds):
    with LOCK:
        c = SEEN.setdefault(status, [0, 0.0, [0] * len(BUCKETS_S)])
        c[0] += 1
        c[1] += seconds
        for i, b in enumerate(BUCKETS_S):
            if seconds <= b:
                c[2][i] += 1


def snapshot():
    with LOCK:
        return {s: [c[0], c[1], list(c[2])] for s, c in SEEN.items()}


def fmt(v):
    if v == float("inf"):
        return "+Inf"
    return repr(float(v)) if isinstance(v, float) else str(v)


def labels(d):
    return "{" + ",".join(f'{k}="{v}"' for k, v in d.items()) + "}" if d else ""


class Page:
    def __init__(self):
        self.lines = []

    def type(self, name, kind):
        self.lines.append(f"# HELP {name} Simulated {KIND} metric.")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name, lbl, value):
        self.lines.append(f"{name}{labels(lbl)} {fmt(value)}")

    def histogram(self, name, lbl, entry, scale, bounds_s=BUCKETS_S):
        """`entry` holds cumulative counts over BUCKETS_S; coarser bounds
        take the count of the largest fine bound not above them (exact here:
        every simulated request takes well under the smallest coarse bound)."""
        count, total, fine = entry
        for b in bounds_s:
            below = [n for bb, n in zip(BUCKETS_S, fine) if bb <= b]
            self.sample(name + "_bucket", {**lbl, "le": fmt(b * scale)}, below[-1] if below else 0)
        self.sample(name + "_bucket", {**lbl, "le": "+Inf"}, count)
        self.sample(name + "_sum", lbl, total * scale)
        self.sample(name + "_count", lbl, count)

    def text(self):
        return "\n".join(self.lines) + "\n"


def merged(snap, pred=lambda s: True):
    out = [0, 0.0, [0] * len(BUCKETS_S)]
    for s, c in snap.items():
        if pred(s):
            out[0] += c[0]
            out[1] += c[1]
            out[2] = [a + b for a, b in zip(out[2], c[2])]
    return out


def grouped(status):
    return f"{status // 100}xx"


GRPC = {200: "OK", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
        400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}


def render():
    snap = snapshot()
    # Pre-create the success series, as real exporters do after the first request.
    snap.setdefault(200, [0, 0.0, [0] * len(BUCKETS_S)])
    p = Page()
    ok = lambda s: s < 400  # noqa: E731
    if KIND == "triton":
        m = {"model": "iris", "version": "1"}
        p.type("nv_inference_request_success", "counter")
        p.sample("nv_inference_request_success", m, merged(snap, ok)[0])
        p.type("nv_inference_request_failure", "counter")
        p.sample("nv_inference_request_failure", {**m, "reason": "BACKEND"}, merged(snap, lambda s: s >= 500)[0])
        p.sample("nv_inference_request_failure", {**m, "reason": "REJECTED"}, merged(snap, lambda s: 400 <= s < 500)[0])
        p.type("nv_inference_count", "counter")
        p.sample("nv_inference_count", m, merged(snap, ok)[0])
        p.type("nv_inference_request_duration_us", "counter")
        p.sample("nv_inference_request_duration_us", m, merged(snap, ok)[1] * 1e6)
        p.type("nv_inference_queue_duration_us", "counter")
        p.sample("nv_inference_queue_duration_us", m, merged(snap, ok)[1] * 1e5)
    elif KIND == "torchserve":
        h = {"Level": "Host", "Hostname": "sim"}
        for cls, pred in (("2XX", lambda s: s < 300), ("4XX", lambda s: 400 <= s < 500), ("5XX", lambda s: s >= 500)):
            p.type(f"Requests{cls}", "counter")
            p.sample(f"Requests{cls}", h, merged(snap, pred)[0])
        m = {"model_name": "iris", "model_version": "default", "hostname": "sim"}
        p.type("ts_inference_requests_total", "counter")
        p.sample("ts_inference_requests_total", m, merged(snap, ok)[0])
        p.type("ts_inference_latency_microseconds", "counter")
        p.sample("ts_inference_latency_microseconds", m, merged(snap, ok)[1] * 1e6)
        p.type("ts_queue_latency_microseconds", "counter")
        p.sample("ts_queue_latency_microseconds", m, merged(snap, ok)[1] * 1e5)
    elif KIND == "tf-serving":
        p.type(":tensorflow:serving:request_count", "counter")
        for s in sorted(snap):
            p.sample(":tensorflow:serving:request_count", {"model_name": "iris", "status": GRPC.get(s, "UNKNOWN")}, snap[s][0])
        p.type(":tensorflow:serving:request_latency", "histogram")
        p.histogram(":tensorflow:serving:request_latency", {"model_name": "iris", "API": "predict", "entrypoint": "REST"}, merged(snap), 1e6)
    elif KIND == "istio":
        base = {"destination_service": "iris.default.svc.cluster.local", "destination_workload": "iris",
                "request_protocol": "http", "source_workload": "gateway"}
        # Both proxies report every request: without reporter="destination"
        # a query would count each request twice.
        for reporter in ("source", "destination"):
            p.type("istio_requests_total", "counter")
            for s in sorted(snap):
                p.sample("istio_requests_total", {**base, "reporter": reporter, "response_code": s}, snap[s][0])
            p.type("istio_request_duration_milliseconds", "histogram")
            for s in sorted(snap):
                p.histogram("istio_request_duration_milliseconds", {**base, "reporter": reporter, "response_code": s}, snap[s], 1e3)
    elif KIND == "micrometer":
        p.type("http_server_requests_seconds", "summary")
        for s in sorted(snap):
            lbl = {"error": "none", "exception": "none", "method": "POST",
                   "outcome": "SUCCESS" if s < 400 else ("CLIENT_ERROR" if s < 500 else "SERVER_ERROR"),
                   "status": s, "uri": "/predict"}
            p.sample("http_server_requests_seconds_count", lbl, snap[s][0])
            p.sample("http_server_requests_seconds_sum", lbl, snap[s][1])
        p.type("http_server_requests_seconds_max", "gauge")
        p.sample("http_server_requests_seconds_max", {"method": "POST", "status": 200, "uri": "/predict"}, 0.02)
    elif KIND == "bentoml":
        base = {"endpoint": "/predict", "service_name": "iris", "service_version": "v1"}
        p.type("bentoml_service_request", "counter")
        for s in sorted(snap):
            p.sample("bentoml_service_request_total", {**base, "http_response_code": s}, snap[s][0])
        p.type("bentoml_service_request_duration_seconds", "histogram")
        for s in sorted(snap):
            p.histogram("bentoml_service_request_duration_seconds", {**base, "http_response_code": s}, snap[s], 1.0)
    elif KIND == "ray-serve":
        base = {"application": "default", "route": "/predict", "method": "POST"}
        p.type("ray_serve_num_http_requests", "counter")
        p.sample("ray_serve_num_http_requests_total", base, merged(snap)[0])
        p.type("ray_serve_num_http_error_requests", "counter")
        for s in sorted(snap):
            if s >= 400:
                p.sample("ray_serve_num_http_error_requests_total", {**base, "error_code": s}, snap[s][0])
        p.type("ray_serve_http_request_latency_ms", "histogram")
        p.histogram("ray_serve_http_request_latency_ms", {"application": "default", "route": "/predict"}, merged(snap), 1e3)
    elif KIND == "tgi":
        p.type("tgi_request_count", "counter")
        p.sample("tgi_request_count", {}, merged(snap)[0])
        p.type("tgi_request_success", "counter")
        p.sample("tgi_request_success", {}, merged(snap, ok)[0])
        p.type("tgi_request_failure", "counter")
        p.sample("tgi_request_failure", {"err": "validation"}, merged(snap, lambda s: 400 <= s < 500)[0])
        p.sample("tgi_request_failure", {"err": "generation"}, merged(snap, lambda s: s >= 500)[0])
        p.type("tgi_request_duration", "histogram")
        p.histogram("tgi_request_duration", {}, merged(snap), 1.0)
    elif KIND == "vllm":
        p.type("http_requests", "counter")
        for cls in sorted({grouped(s) for s in snap}):
            p.sample("http_requests_total", {"handler": "/v1/completions", "method": "POST", "status": cls},
                     merged(snap, lambda s, c=cls: grouped(s) == c)[0])
        p.type("http_request_duration_seconds", "histogram")
        p.histogram("http_request_duration_seconds", {"handler": "/v1/completions", "method": "POST"}, merged(snap), 1.0,
                    [0.1, 0.5, 1.0])
        m = {"model_name": "iris-llm"}
        p.type("vllm:e2e_request_latency_seconds", "histogram")
        p.histogram("vllm:e2e_request_latency_seconds", m, merged(snap, ok), 1.0)
        p.type("vllm:request_success", "counter")
        p.sample("vllm:request_success_total", {**m, "finished_reason": "stop"}, merged(snap, ok)[0])
    elif KIND == "seldon":
        base = {"deployment_name": "iris", "predictor_name": "default", "method": "POST", "service": "predictions"}
        p.type("seldon_api_executor_server_requests_seconds", "histogram")
        for s in sorted(snap):
            p.histogram("seldon_api_executor_server_requests_seconds", {**base, "code": s}, snap[s], 1.0)
    elif KIND == "go-http-metrics":
        p.type("http_request_duration_seconds", "histogram")
        for s in sorted(snap):
            p.histogram("http_request_duration_seconds", {"code": s, "handler": "/predict", "method": "post", "service": "iris"}, snap[s], 1.0)
    elif KIND == "ingress-nginx":
        base = {"ingress": "iris", "namespace": "default", "service": "iris", "path": "/", "method": "POST"}
        p.type("nginx_ingress_controller_requests", "counter")
        for s in sorted(snap):
            p.sample("nginx_ingress_controller_requests", {**base, "status": s}, snap[s][0])
        p.type("nginx_ingress_controller_request_duration_seconds", "histogram")
        for s in sorted(snap):
            p.histogram("nginx_ingress_controller_request_duration_seconds", {**base, "status": s}, snap[s], 1.0)
    elif KIND == "traefik":
        base = {"method": "POST", "protocol": "http", "service": "iris@docker"}
        p.type("traefik_service_requests_total", "counter")
        for s in sorted(snap):
            p.sample("traefik_service_requests_total", {**base, "code": s}, snap[s][0])
        p.type("traefik_service_request_duration_seconds", "histogram")
        for s in sorted(snap):
            p.histogram("traefik_service_request_duration_seconds", {**base, "code": s}, snap[s], 1.0, TRAEFIK_BUCKETS_S)
    elif KIND == "unknown":
        # A service in no known convention (for `init`/`doctor` refusals).
        p.type("jobs_processed_total", "counter")
        p.sample("jobs_processed_total", {"queue": "default"}, merged(snap)[0])
    else:
        raise SystemExit(f"unknown kind {KIND!r}")
    return p.text()


def fault_status(headers):
    for part in headers.get("x-slocheck-fault", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "status" and value.isdigit():
            return int(value)
    return 200


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json", applied=None):
        data = body.encode()
        self.send_response(status)
        if applied:
            # The fault protocol's acknowledgement (docs/fault-protocol.md).
            self.send_header("x-slocheck-fault-applied", applied)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/metrics"):
            self.reply(200, render(), "text/plain; version=0.0.4")
            return
        start = time.perf_counter()
        status = fault_status(self.headers)
        with LOCK:
            work = RNG.uniform(0.002, 0.008)
        time.sleep(work)
        body = '{"prediction": "setosa"}' if status < 400 else '{"error": "injected"}'
        observe(status, time.perf_counter() - start)
        faulted = "x-slocheck-fault" in self.headers and status != 200
        self.reply(status, body, applied=f"status={status}" if faulted else None)

    do_GET = serve
    do_POST = serve


def main():
    # The default listen backlog (5) refuses connections under a burst.
    http.server.ThreadingHTTPServer.request_queue_size = 128
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
