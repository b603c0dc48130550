"""A Starlette app whose metrics are a pure ASGI middleware added with
`app.add_middleware`: the style where order matters. Starlette makes the
last added middleware the outermost, so the fault middleware is added
first and the metrics middleware after it."""

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from slocheck_faults import SlocheckFaultMiddleware

REGISTRY = CollectorRegistry()
REQUESTS = Counter("http_requests_total", "requests", ["path", "method", "status"], registry=REGISTRY)
LATENCY = Histogram("http_request_latency_seconds", "latency", ["path", "method"], registry=REGISTRY)


class MetricsMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def capture(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            REQUESTS.labels(scope["path"], scope["method"], str(status["code"])).inc()
            LATENCY.labels(scope["path"], scope["method"]).observe(time.perf_counter() - start)


async def predict(request):
    return JSONResponse({"class": "setosa"})


async def metrics(request):
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


app = Starlette(routes=[Route("/predict", predict), Route("/metrics", metrics)])
app.add_middleware(SlocheckFaultMiddleware)  # first: innermost
app.add_middleware(MetricsMiddleware)  # last: outermost, sees every answer
