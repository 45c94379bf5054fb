"""The backend serves the store app bundle compressed and revalidated, byte-identical to the build."""
from __future__ import annotations

import gzip

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.config import Settings
from store_app import build


def test_bundle_is_served_gzipped_when_asked_and_always_revalidated(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<html><head></head><body>" + "storeline " * 400 + "</body></html>")
    script = ("console.log('pick pack ship');\n" * 500).encode()
    (dist / "main.dart.js").write_bytes(script)
    (dist / "tiny.js").write_text("1")
    assert build._precompress(dist) == 2, "index.html and main.dart.js; tiny.js is not worth it"
    assert (dist / "main.dart.js.gz").exists() and not (dist / "tiny.js.gz").exists()

    app = create_app(Settings(app_dir=dist, scheduler=False, database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    with TestClient(app) as client:
        r = client.get("/app/main.dart.js", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.content == script, "httpx decodes it: the same bytes as built"
        assert int(r.headers["content-length"]) < len(script) / 5
        assert r.headers["cache-control"] == "no-cache" and "javascript" in r.headers["content-type"]
        again = client.get("/app/main.dart.js", headers={"Accept-Encoding": "gzip",
                                                         "If-None-Match": r.headers["etag"]})
        assert again.status_code == 304

        plain = client.get("/app/main.dart.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == script
        shell = client.get("/app/", headers={"Accept-Encoding": "gzip"})
        assert shell.headers["content-encoding"] == "gzip" and b"storeline" in shell.content
        assert shell.headers["cache-control"] == "no-cache"
        assert client.get("/app/tiny.js").headers["cache-control"] == "no-cache"
        assert gzip.decompress((dist / "index.html.gz").read_bytes()) == (dist / "index.html").read_bytes()
