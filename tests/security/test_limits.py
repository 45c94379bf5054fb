"""Request size limits: bulk feeds may be large, everything else small; above the limit, 413 before reading."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.app import BULK_PATHS, create_app
from backend.config import Settings

BULK_LIMIT = 20_000
JSON_LIMIT = 2_000
BULK_METHODS = {"/api/v1/inventory/levels": "PUT", "/api/v1/products": "PUT", "/api/v1/locations": "PUT",
                "/api/v1/users": "PUT", "/api/v1/sync/push": "POST"}


@pytest.fixture
def small_limits_client(app, db_url):
    """The same app as the tests', with small limits so the test sends kilobytes, not 40 MiB."""
    limited = create_app(Settings(max_body_bytes=BULK_LIMIT, max_json_body_bytes=JSON_LIMIT, scheduler=False,
                                  log_json=False))
    with TestClient(limited, raise_server_exceptions=False) as c:
        yield c


def _body(size: int) -> bytes:
    head = b'{"rows": ["'
    return head + b"x" * (size - len(head) - 3) + b'"]}'


def test_every_bulk_endpoint_refuses_a_body_above_the_bulk_limit(small_limits_client, hq):
    assert set(BULK_METHODS) == set(BULK_PATHS), "a bulk path was added: give it a method here"
    for path, method in BULK_METHODS.items():
        headers = {**hq, "content-type": "application/json"}
        r = small_limits_client.request(method, path, content=_body(BULK_LIMIT + 1), headers=headers)
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
        assert r.json() == {"code": "payload_too_large", "message": f"the request body is larger than {BULK_LIMIT} "
                            "bytes", "details": {"limit_bytes": BULK_LIMIT}}
        # Between the two limits a bulk body is read (and judged on its content, not its size).
        r = small_limits_client.request(method, path, content=_body(JSON_LIMIT * 3), headers=headers)
        assert r.status_code != 413, (path, r.text[:200])


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(small_limits_client, hq):
    def chunks():
        for _ in range(BULK_LIMIT // 1000 + 5):
            yield b"x" * 1000

    headers = {**hq, "content-type": "text/csv"}
    r = small_limits_client.put("/api/v1/inventory/levels", content=chunks(), headers=headers)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_other_endpoints_keep_the_small_limit(small_limits_client, hq):
    headers = {**hq, "content-type": "application/json"}
    for method, path in (("POST", "/api/v1/orders"), ("PUT", "/api/v1/channels"), ("POST", "/api/v1/auth/token")):
        r = small_limits_client.request(method, path, content=_body(JSON_LIMIT + 1), headers=headers)
        assert r.status_code == 413, (path, r.status_code)
