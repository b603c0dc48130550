"""A Flask service with prometheus_client metrics measured in a WSGI
middleware, plus the two lines of slocheck's fault middleware (marked below).

    pip install ./integrations/python flask gunicorn prometheus_client
    gunicorn --chdir examples/python --bind 127.0.0.1:8000 --threads 64 flask_app:app

then `slocheck run scenarios/external/flask-error-spike.toml`.
"""

import time

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from slocheck_faults import SlocheckFaultWSGIMiddleware  # slocheck fault protocol

REQUESTS = Counter(
    "http_requests_total", "HTTP requests by path, method and status", ["path", "method", "status"]
)
LATENCY = Histogram(
    "http_request_latency_seconds", "HTTP request latency by path and method", ["path", "method"]
)


class MetricsMiddleware:
    """Counts and times every request, whatever answered it."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        start = time.perf_counter()
        status = ["500"]

        def record_status(line, headers, exc_info=None):
            status[0] = line.split(" ", 1)[0]
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, record_status)
        finally:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
            REQUESTS.labels(path, method, status[0]).inc()
            LATENCY.labels(path, method).observe(time.perf_counter() - start)


app = Flask(__name__)

WEIGHTS = (-1.2, -2.1)
BIAS = 4.0


@app.get("/predict")
def predict():
    length = request.args.get("petal_length", 1.4, type=float)
    width = request.args.get("petal_width", 0.2, type=float)
    score = BIAS + WEIGHTS[0] * length + WEIGHTS[1] * width
    return jsonify({"class": "setosa" if score > 0 else "other", "score": round(score, 4)})


@app.get("/metrics")
def metrics():
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


# The fault middleware wraps the app first, the metrics middleware wraps
# both: injected errors and delays pass through the metrics.
app.wsgi_app = SlocheckFaultWSGIMiddleware(app.wsgi_app)  # slocheck fault protocol
app.wsgi_app = MetricsMiddleware(app.wsgi_app)
