"""A FastAPI service instrumented the way the prometheus_client tutorials do
it (a Counter and a Histogram observed in an `@app.middleware("http")`),
plus the two lines of slocheck's fault middleware (marked below).

    pip install ./integrations/python fastapi uvicorn prometheus_client
    uvicorn --app-dir examples/python fastapi_app:app --port 8000

then `slocheck run scenarios/external/fastapi-error-spike.toml`.
"""

import time

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from slocheck_faults import SlocheckFaultMiddleware  # slocheck fault protocol

app = FastAPI()
# Added before the metrics middleware below, so it runs inside it: the
# metrics count injected errors and time injected delays like real ones.
app.add_middleware(SlocheckFaultMiddleware)  # slocheck fault protocol

REQUESTS = Counter(
    "http_requests_total", "HTTP requests by path, method and status", ["path", "method", "status"]
)
LATENCY = Histogram(
    "http_request_latency_seconds", "HTTP request latency by path and method", ["path", "method"]
)


@app.middleware("http")
async def record_metrics(request: Request, call_next):
    start = time.perf_counter()
    response = await call_next(request)
    path = request.url.path
    REQUESTS.labels(path, request.method, str(response.status_code)).inc()
    LATENCY.labels(path, request.method).observe(time.perf_counter() - start)
    return response


@app.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# A tiny fixed linear model: Iris setosa vs. the rest from petal length/width.
WEIGHTS = (-1.2, -2.1)
BIAS = 4.0


@app.get("/predict")
def predict(petal_length: float = 1.4, petal_width: float = 0.2) -> dict:
    score = BIAS + WEIGHTS[0] * petal_length + WEIGHTS[1] * petal_width
    return {"class": "setosa" if score > 0 else "other", "score": round(score, 4)}
