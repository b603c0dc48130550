"""Real servers for the tests: uvicorn (ASGI) and gunicorn (WSGI) on free
loopback ports, started as child processes and stopped by PID."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import httpx
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "python"
APPS = pathlib.Path(__file__).resolve().parent / "apps"
CASES = json.loads((REPO / "tests" / "fixtures" / "fault-protocol-cases.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen
    log: pathlib.Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


def _command(kind: str, app_dir: pathlib.Path, app: str, port: int) -> List[str]:
    if kind == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), app,
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return [sys.executable, "-m", "gunicorn", "--chdir", str(app_dir), "--bind",
            f"127.0.0.1:{port}", "--threads", "16", "--log-level", "warning", app]


def start(kind: str, app_dir: pathlib.Path, app: str, tmp: pathlib.Path,
          env: Optional[Dict[str, str]] = None) -> Server:
    """Starts the server, retrying on another port if one was taken, and
    waits until it answers HTTP."""
    last = ""
    for attempt in range(3):
        port = free_port()
        log = tmp / f"{kind}-{port}.log"
        full_env = {k: v for k, v in os.environ.items() if k != "SLOCHECK_FAULT_TOKEN"}
        full_env.update(env or {})
        proc = subprocess.Popen(_command(kind, app_dir, app, port), stdout=subprocess.DEVNULL,
                                stderr=log.open("w"), env=full_env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                httpx.get(url + "/metrics", timeout=1)
                return Server(f"{kind}:{app}", url, proc, log)
            except httpx.HTTPError:
                time.sleep(0.1)
        stop(proc)
        last = log.read_text(errors="replace")
    raise RuntimeError(f"{kind} {app} did not start: {last}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Every app style the package supports, as (server, app dir, app).
STYLES = {
    "fastapi-decorator": ("uvicorn", EXAMPLES, "fastapi_app:app"),
    "starlette-add_middleware": ("uvicorn", APPS, "asgi_add_middleware:app"),
    "flask-wsgi": ("gunicorn", EXAMPLES, "flask_app:app"),
}


@pytest.fixture(scope="session", params=sorted(STYLES))
def server(request, tmp_path_factory):
    kind, app_dir, app = STYLES[request.param]
    s = start(kind, app_dir, app, tmp_path_factory.mktemp(request.param))
    yield s
    stop(s.proc)


@pytest.fixture(scope="session", params=sorted(STYLES))
def server_with_token(request, tmp_path_factory):
    kind, app_dir, app = STYLES[request.param]
    s = start(kind, app_dir, app, tmp_path_factory.mktemp(request.param + "-token"),
              env={"SLOCHECK_FAULT_TOKEN": "s3cret-token"})
    yield s
    stop(s.proc)
