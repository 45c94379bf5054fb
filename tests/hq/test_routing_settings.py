"""Routing settings: versioned, HQ-only to change, and what routing reads through current_weights."""
from __future__ import annotations

from backend.db import session_scope
from backend.routing.cost import Weights
from backend.services.routing_settings import current_weights
from tests.conftest import login
from tests.hq import data


def test_versions_who_and_when(client, hq, integration):
    data.setup(client, hq, integration)
    mia = login(client, "s1-mia", "3333")
    r = client.get("/api/v1/routing/settings", headers=hq)
    assert r.status_code == 200
    first = r.json()
    assert first["version"] == 0 and first["weights"]["package_base"] == 6.0 and first["created_by"] is None

    r = client.put("/api/v1/routing/settings", headers=hq,
                   json={"weights": {"package_base": 7.5, "handling": {"store": 3.0}}, "note": "new carrier rates"})
    assert r.status_code == 200, r.text
    saved = r.json()
    assert (saved["version"], saved["created_by"], saved["note"]) == (1, "hq", "new carrier rates")
    assert saved["created_at"] and saved["weights"]["handling"] == {"store": 3.0, "warehouse": 0.75, "3pl": 1.25,
                                                                    "supplier": 2.0}
    assert client.get("/api/v1/routing/settings", headers=mia).json()["version"] == 1
    with session_scope() as s:
        w = current_weights(s)
    assert isinstance(w, Weights) and (w.package_base, w.handling["store"], w.unit_cost) == (7.5, 3.0, 0.5)

    # a second save replaces the first (absent weights take the published defaults); history stays
    r = client.put("/api/v1/routing/settings", headers=hq, json={"weights": {"unit_cost": 0.8}})
    assert r.json()["version"] == 2 and r.json()["weights"]["package_base"] == 6.0

    for bad in ({"bogus": 1}, {"package_base": -1.0}, {"handling": {"moon": 1.0}}, {"package_base": "cheap"}):
        r = client.put("/api/v1/routing/settings", headers=hq, json={"weights": bad})
        assert r.status_code == 422 and r.json()["code"] == "invalid_weights", (bad, r.text)
    assert client.put("/api/v1/routing/settings", headers=mia, json={"weights": {}}).status_code == 403
    assert client.get("/api/v1/routing/settings", headers=hq).json()["version"] == 2
