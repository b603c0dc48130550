"""A small FastAPI inference service instrumented by one real exporter.

Used by tests/presets.rs and tests/init.rs: the exporter is the real package
from PyPI (ci/requirements.txt), only the "model" is trivial. A request whose
`x-slocheck-fault` header says `status=NNN` is answered with that status by
the route itself, so the exporter records it exactly as a real failure, and
acknowledged with `x-slocheck-fault-applied` as docs/fault-protocol.md asks.

    python exporter_app.py KIND        KIND: instrumentator | starlette |
                                             otel | otel-legacy

Binds 127.0.0.1 on a free port and prints `listening on PORT` once ready.
"""

import os
import socket
import sys

KIND = sys.argv[1] if len(sys.argv) > 1 else "instrumentator"

if KIND == "otel":
    # Stable HTTP semantic conventions (http_server_request_duration_seconds).
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"
elif KIND == "otel-legacy":
    os.environ.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
import uvicorn  # noqa: E402

app = FastAPI()


def fault_status(request: Request):
    for part in request.headers.get("x-slocheck-fault", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "status" and value.isdigit():
            return int(value)
    return None


@app.post("/predict")
@app.get("/predict")
async def predict(request: Request):
    status = fault_status(request)
    if status is not None:
        return JSONResponse(
            {"error": "injected"},
            status_code=status,
            headers={"x-slocheck-fault-applied": f"status={status}"},
        )
    return {"prediction": "setosa"}


if KIND == "instrumentator":
    from prometheus_fastapi_instrumentator import Instrumentator

    Instrumentator().instrument(app).expose(app)
elif KIND == "starlette":
    from starlette_exporter import PrometheusMiddleware, handle_metrics

    app.add_middleware(PrometheusMiddleware, app_name="exporter-app", group_paths=True)
    app.add_route("/metrics", handle_metrics)
elif KIND in ("otel", "otel-legacy"):
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from fastapi.responses import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    FastAPIInstrumentor.instrument_app(app, meter_provider=provider, excluded_urls="metrics")

    # Served at /metrics itself (a mounted ASGI app would answer with a
    # redirect to /metrics/).
    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
else:
    sys.exit(f"unknown exporter kind {KIND!r}")


def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"listening on {port}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
