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


def _spawn(kind: str, app_dir: pathlib.Path, app: str, env: Optional[Dict[str, str]],
           tmp: pathlib.Path) -> Server:
    port = free_port()
    log = tmp / f"{kind}-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if k != "SLOCHECK_FAULT_TOKEN"}
    full_env.update(env or {})
    proc = subprocess.Popen(_command(kind, app_dir, app, port), stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), env=full_env)
    return Server(f"{kind}:{app}", f"http://127.0.0.1:{port}", proc, log)


def _serving(s: Server) -> bool:
    try:
        httpx.get(s.url + "/metrics", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def start_all(specs: Dict[str, tuple], tmp: pathlib.Path, timeout: float = 90) -> Dict[str, Server]:
    """Starts every server at once (their imports overlap) and waits until
    each answers HTTP; one whose port was taken meanwhile is retried on
    another port."""
    servers = {key: _spawn(*spec, tmp) for key, spec in specs.items()}
    retries = {key: 2 for key in specs}
    pending = set(servers)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key in sorted(pending):
            s = servers[key]
            if _serving(s):
                pending.discard(key)
            elif s.proc.poll() is not None and retries[key] > 0:
                retries[key] -= 1
                servers[key] = _spawn(*specs[key], tmp)
        time.sleep(0.1)
    if pending:
        for s in servers.values():
            stop(s.proc)
        logs = {key: servers[key].stderr() for key in pending}
        raise RuntimeError(f"servers did not start: {logs}")
    return servers


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
# One ASGI and one WSGI app started with a token configured.
TOKEN = "s3cret-token"
TOKEN_STYLES = ("fastapi-decorator", "flask-wsgi")


@pytest.fixture(scope="session")
def all_servers(tmp_path_factory):
    specs = {key: (*spec, None) for key, spec in STYLES.items()}
    specs.update({
        key + "+token": (*STYLES[key], {"SLOCHECK_FAULT_TOKEN": TOKEN}) for key in TOKEN_STYLES
    })
    servers = start_all(specs, tmp_path_factory.mktemp("servers"))
    yield servers
    for s in servers.values():
        stop(s.proc)


@pytest.fixture(params=sorted(STYLES))
def server(request, all_servers):
    return all_servers[request.param]


@pytest.fixture(params=TOKEN_STYLES)
def server_with_token(request, all_servers):
    return all_servers[request.param + "+token"]
