"""Authentication and authorisation across roles and stores."""
from __future__ import annotations

from datetime import timedelta

import jwt

from backend.clock import now
from tests import retailer
from tests.conftest import login


def test_every_endpoint_but_health_needs_credentials(client, app):
    assert client.get("/health").status_code == 200
    open_paths = {"/health", "/ready", "/metrics", "/api/v1/auth/token", "/", "/openapi.json", "/docs",
                  "/docs/oauth2-redirect", "/redoc"}
    checked = 0
    for path, ops in app.openapi()["paths"].items():
        if path in open_paths or path.startswith("/track"):
            continue
        for method in ops:
            url = path.replace("{", "").replace("}", "")
            r = client.request(method.upper(), url)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["code"] == "not_authenticated"
            checked += 1
    assert checked >= 8


def test_login_with_pin_and_me(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    h = login(client, "s1-ana", "1111")
    me = client.get("/api/v1/me", headers=h).json()
    assert me == {"username": "s1-ana", "role": "associate", "store": "S1", "name": "Ana", "locations": None}
    bad = client.post("/api/v1/auth/token", data={"username": "s1-ana", "password": "9999"})
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_credentials"


def test_forged_expired_and_garbage_tokens_are_refused(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    forged = jwt.encode({"sub": "hq", "role": "hq", "exp": now() + timedelta(hours=1)}, "guess", algorithm="HS256")
    from backend.config import get_settings

    expired = jwt.encode({"sub": "hq", "role": "hq", "exp": now() - timedelta(minutes=1)},
                         get_settings().jwt_secret(), algorithm="HS256")
    for token, code in ((forged, "invalid_token"), (expired, "token_expired"), ("garbage", "invalid_token")):
        r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["code"] == code
    r = client.get("/api/v1/me", headers={"X-API-Key": "sl_wrong"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"


def test_roles_decide_what_each_may_do(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    ana = login(client, "s1-ana", "1111")
    mia = login(client, "s1-mia", "3333")
    # Associates may not load master data or orders.
    assert client.put("/api/v1/locations", json={"locations": []}, headers=ana).status_code == 403
    assert client.post("/api/v1/orders", json=retailer.order("X-1"), headers=ana).status_code == 403
    # A manager manages their own store's associates only.
    ok = client.put("/api/v1/users", json={"users": [dict(username="s1-new", role="associate", store="S1",
                                                          pin="1234")]}, headers=mia)
    assert ok.status_code == 200 and ok.json()["upserted"] == 1
    refused = client.put("/api/v1/users", json={"users": [
        dict(username="s2-new", role="associate", store="S2", pin="1234"),
        dict(username="s1-boss", role="manager", store="S1", pin="1234"),
        dict(username="s2-cai", role="associate", store="S1", pin="1234")]}, headers=mia).json()
    assert refused["upserted"] == 0 and [r["code"] for r in refused["rejected"]] == ["forbidden_role"] * 3
    assert {u["store"] for u in client.get("/api/v1/users", headers=mia).json()} == {"S1"}


def test_login_attempts_are_rate_limited(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    codes = [client.post("/api/v1/auth/token", data={"username": "s1-ben", "password": "0000"}).status_code
             for _ in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    r = client.post("/api/v1/auth/token", data={"username": "s1-ben", "password": "2222"})
    assert r.status_code == 429, "even the right PIN waits until the minute has passed"
