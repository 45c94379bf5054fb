"""Authorisation across stores, roles and node scopes, for every such endpoint the OpenAPI document lists.

The store- and location-scoped endpoints are found in the document itself ({code} in the path), so endpoints
added later are covered without editing this file. Each is called with schema-valid requests (schemathesis
positive examples, path `code` set to another store) so a 403 cannot hide behind a 422.
"""
from __future__ import annotations

import jwt
import schemathesis
from hypothesis import HealthCheck, given, settings

from backend.clock import now
from tests import retailer
from tests.conftest import login

# Operations an associate may never use (HQ, integration or manager rights), checked when present.
NOT_FOR_ASSOCIATES = {
    ("PUT", "/api/v1/locations"), ("PUT", "/api/v1/products"), ("PUT", "/api/v1/channels"),
    ("PUT", "/api/v1/inventory/levels"), ("PUT", "/api/v1/users"), ("GET", "/api/v1/users"),
    ("POST", "/api/v1/orders"), ("POST", "/api/v1/orders/{order_id}/cancel"),
    ("POST", "/api/v1/orders/{order_id}/lines/{line_id}/override"),
    ("POST", "/api/v1/orders/{order_id}/tracking/revoke"),
    ("POST", "/api/v1/routing/batch"), ("PUT", "/api/v1/routing/settings"), ("POST", "/api/v1/hq/whatif"),
    ("GET", "/api/v1/hq/stores/performance"), ("GET", "/api/v1/hq/stores/trends"), ("GET", "/api/v1/hq/overrides"),
    ("GET", "/api/v1/hq/allocation-policy"), ("PUT", "/api/v1/hq/allocation-policy"), ("GET", "/api/v1/hq/promises"),
    ("GET", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys/{key_id}/revoke"),
    ("GET", "/api/v1/webhooks"), ("POST", "/api/v1/webhooks"), ("DELETE", "/api/v1/webhooks/{webhook_id}"),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"), ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/replay"),
}
# Operations only HQ may use: an integration key is refused.
HQ_ONLY = {
    ("GET", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys/{key_id}/revoke"),
    ("PUT", "/api/v1/routing/settings"), ("PUT", "/api/v1/hq/allocation-policy"), ("POST", "/api/v1/hq/whatif"),
}


# Bodies that pass validators the schema cannot express, for operations whose generated bodies never do.
KNOWN_GOOD_BODIES = {
    ("POST", "/api/v1/locations/{code}/shipments"): {"shipment_id": "SH-1", "carrier": "UPS",
                                                      "lines": [{"allocation_id": "alc-x", "quantity": 1}]},
    ("POST", "/api/v1/locations/{code}/rejections"): {"lines": [{"allocation_id": "alc-x", "quantity": 1,
                                                                 "reason": "damaged"}]},
}


def _cases(op, n: int = 4) -> list:
    out: list = []

    @given(case=op.as_strategy())
    @settings(max_examples=n, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def draw(case) -> None:
        out.append(case)

    draw()
    return out


def _call(case, headers: dict[str, str], **path: str):
    case.headers = {}  # generated Authorization / X-API-Key values would stand in for the caller's
    if path:
        case.path_parameters = {**(case.path_parameters or {}), **path}
    return case.call(headers=headers)


def _operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [r.ok() for r in schema.get_all_operations()]


def _node_key(client, hq, location: str) -> dict[str, str]:
    r = client.post("/api/v1/api-keys", json={"name": f"node {location}", "role": "node", "locations": [location]},
                    headers=hq)
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def test_store_staff_cannot_reach_another_stores_endpoints(app, client, hq, integration):
    retailer.load(client, hq, integration)
    callers = {"associate s1-ana": login(client, "s1-ana", "1111"), "manager s1-mia": login(client, "s1-mia", "3333"),
               "node key of W1": _node_key(client, hq, "W1")}
    scoped = [op for op in _operations(app) if "{code}" in op.path]
    assert scoped, "no store- or location-scoped endpoint in the OpenAPI document"
    leaks = []
    for op in scoped:
        for who, headers in callers.items():
            statuses = []
            for case in _cases(op, 6):
                r = _call(case, headers, code="S2")
                statuses.append(r.status_code)
                # 422: a body the schema allows but a validator refuses (checked before the location); no data.
                if r.status_code not in (403, 422):
                    leaks.append(f"{op.method.upper()} {op.path} as {who} for S2 -> {r.status_code} {r.text[:160]}")
            known = KNOWN_GOOD_BODIES.get((op.method.upper(), op.path))
            if known is not None:
                r = client.request(op.method.upper(), op.path.replace("{code}", "S2"), json=known, headers=headers)
                statuses.append(r.status_code)
                if r.status_code != 403:
                    leaks.append(f"{op.method.upper()} {op.path} as {who} for S2 -> {r.status_code} {r.text[:160]}")
            if 403 not in statuses:
                leaks.append(f"{op.method.upper()} {op.path} as {who}: no request reached the check ({statuses})")
    assert not leaks, "\n".join(leaks)


def test_store_staff_can_read_their_own_store(app, client, hq, integration):
    """The refusals above are about the store, not the endpoint: the same readers get their own store's data."""
    retailer.load(client, hq, integration)
    mia = login(client, "s1-mia", "3333")
    paths = {op.path for op in _operations(app) if op.method.upper() == "GET" and op.path.startswith("/api/v1/stores/")
             and op.path.count("{") == 1}
    assert paths
    for path in sorted(paths):
        r = client.get(path.replace("{code}", "S1"), headers=mia)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])


def test_node_keys_act_only_for_their_locations(app, client, hq, integration):
    retailer.load(client, hq, integration)
    key = _node_key(client, hq, "W1")
    work = "/api/v1/locations/{code}/work"
    ops = {op.path for op in _operations(app) if op.method.upper() == "GET" and op.path == work}
    if ops:
        assert client.get("/api/v1/locations/W1/work", headers=key).status_code == 200
        assert client.get("/api/v1/locations/S1/work", headers=key).status_code == 403
    assert client.put("/api/v1/inventory/levels", json={"mode": "delta", "rows": []}, headers=key).status_code == 403
    assert client.post("/api/v1/orders", json=retailer.order("N-1"), headers=key).status_code == 403


def test_roles_are_enforced_on_every_privileged_endpoint(app, client, hq, integration):
    retailer.load(client, hq, integration)
    ana = login(client, "s1-ana", "1111")
    present = {(op.method.upper(), op.path): op for op in _operations(app)}
    wrong = []
    for (method, path), who, headers in [*((k, "associate", ana) for k in sorted(NOT_FOR_ASSOCIATES)),
                                         *((k, "integration", integration) for k in sorted(HQ_ONLY))]:
        op = present.get((method, path))
        if op is None:
            continue
        for case in _cases(op, 3):
            r = _call(case, headers)
            if r.status_code != 403:
                wrong.append(f"{method} {path} as {who} -> {r.status_code} {r.text[:160]}")
    assert not wrong, "\n".join(wrong)
    assert len(NOT_FOR_ASSOCIATES & set(present)) >= 10, "the privileged endpoints moved: update the tables"


def test_tokens_with_alg_none_or_for_a_deactivated_user_are_refused(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    unsigned = jwt.encode({"sub": "hq", "role": "hq", "exp": now().timestamp() + 3600}, None, algorithm="none")
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {unsigned}"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    ben = login(client, "s1-ben", "2222")
    assert client.get("/api/v1/me", headers=ben).status_code == 200
    r = client.put("/api/v1/users", json={"users": [dict(username="s1-ben", role="associate", store="S1", pin="2222",
                                                          active=False)]}, headers=hq)
    assert r.status_code == 200 and r.json()["upserted"] == 1
    r = client.get("/api/v1/me", headers=ben)
    assert r.status_code == 401 and r.json()["code"] == "inactive_user", "a deactivated user's token dies at once"
    assert client.post("/api/v1/auth/token", data={"username": "s1-ben", "password": "2222"}).status_code == 401


def test_login_limit_counts_every_spelling_of_a_user_name(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    spellings = ["s1-ben", "S1-BEN", " s1-ben ", "S1-Ben"]
    codes = [client.post("/api/v1/auth/token", data={"username": spellings[i % 4], "password": "0000"}).status_code
             for i in range(11)]
    assert codes[-1] == 429, codes
