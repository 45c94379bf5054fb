"""Metrics, request ids, structured logs and the production start-up checks."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from backend.config import REPO_ROOT, Settings
from backend.logging import RequestContext, configure_logging


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit(" ", 1)[0]))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_are_open_and_count_requests_by_route_template(client, integration):
    for _ in range(3):
        assert client.get("/api/v1/orders/ord-nope", headers=integration).status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert _sample(text, "storeline_http_request_seconds_count", method="GET", route="/api/v1/orders/{order_id}",
                   status="404") >= 3
    assert "ord-nope" not in text, "raw paths (ids) never become labels"
    for name in ("storeline_routing_seconds", "storeline_batch_seconds", "storeline_sync_pull_seconds"):
        assert f"# TYPE {name} histogram" in text
    for name in ("storeline_routing_decisions", "storeline_sync_push_actions", "storeline_reservations",
                 "storeline_rejections"):
        assert f"# TYPE {name}_total counter" in text or f"# TYPE {name} counter" in text, name


def test_request_id_is_kept_or_made_and_returned(client):
    r = client.get("/health", headers={"X-Request-ID": "shop-42.retry:1"})
    assert r.headers["x-request-id"] == "shop-42.retry:1"
    made = client.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    hostile = client.get("/health", headers={"X-Request-ID": "x" * 500}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", hostile), "an unusable id is replaced, not echoed into logs"
    assert client.get("/api/v1/me").headers["x-request-id"], "errors carry it too"


def test_logs_are_json_with_the_request_id_and_errors_say_which_request():
    def boom(_):
        raise RuntimeError("kaput")

    def warn(_):
        logging.getLogger("storeline.test").warning("stock looks odd")
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/boom", boom), Route("/warn", warn)], middleware=[Middleware(RequestContext)])
    buf = io.StringIO()
    configure_logging(json_logs=True, stream=buf)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            assert c.get("/warn", headers={"X-Request-ID": "req-warn"}).status_code == 200
            r = c.get("/boom", headers={"X-Request-ID": "req-boom"})
    finally:
        configure_logging(json_logs=False)
    assert r.status_code == 500 and r.headers["x-request-id"] == "req-boom"
    assert r.json() == {"code": "internal_error", "message": "an internal error occurred; it has been logged",
                        "details": {"request_id": "req-boom"}}
    lines = [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]
    warned = [x for x in lines if x["event"] == "stock looks odd"]
    assert warned and warned[0]["request_id"] == "req-warn" and warned[0]["level"] == "warning"
    errors = [x for x in lines if x["event"] == "unhandled error"]
    assert errors and errors[0]["request_id"] == "req-boom" and "kaput" in errors[0]["exception"]
    assert all("timestamp" in x for x in lines)


def test_postgresql_without_a_signing_key_refuses_to_start(monkeypatch, capsys):
    from backend import server
    from backend.config import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://storeline@127.0.0.1:1/nowhere")
    monkeypatch.delenv("STORELINE_SECRET_KEY", raising=False)
    monkeypatch.delenv("STORELINE_ALLOW_GENERATED_SECRET", raising=False)
    get_settings.cache_clear()
    try:
        assert server.serve("127.0.0.1", 1, 1) == 2
        assert "STORELINE_SECRET_KEY" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
    assert Settings(database_url="postgresql://u@h/db", secret_key=None, allow_generated_secret=True) \
        .secret_problem() is None
    assert Settings(database_url="postgresql://u@h/db", secret_key="k" * 40).secret_problem() is None
    assert Settings(database_url=None, secret_key=None).secret_problem() is None, "the SQLite demo generates one"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_share_one_metrics_page_and_log_json(tmp_path: Path):
    """A real `storeline serve --workers 2`: /metrics adds up both workers' counts."""
    port = _free_port()
    stale = tmp_path / "prometheus"
    stale.mkdir()
    (stale / "counter_999.db").write_bytes(b"left over from a previous run")
    env = {**os.environ, "STORELINE_DATA_DIR": str(tmp_path), "STORELINE_SCHEDULER": "false",
           "STORELINE_LOG_JSON": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--port", str(port), "--workers", "2"],
                                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.2)
        else:
            pytest.fail("server did not become ready: " + log_path.read_text())
        n = 40
        for _ in range(n):  # a new connection each time, so both workers answer some
            assert httpx.get(f"{base}/health", headers={"Connection": "close"}, timeout=10).status_code == 200
        text = httpx.get(f"{base}/metrics", timeout=10).text
        assert _sample(text, "storeline_http_request_seconds_count", route="/health", status="200") == n
        assert not (stale / "counter_999.db").exists(), "files of an earlier run are cleared at start"
        r = httpx.get(f"{base}/api/v1/me", headers={"X-Request-ID": "probe-1"}, timeout=10)
        assert r.status_code == 401 and r.headers["x-request-id"] == "probe-1"
    finally:
        proc.terminate()
        proc.wait(30)
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
    assert any(x.get("event") == "starting" and x.get("workers") == 2 for x in lines), log_path.read_text()[:2000]
