"""The store app's static bundle at /app/: precompressed files when the browser takes gzip, and revalidation
on every load so a new build is found at once (the service worker keeps the offline copy; this is only about the
network path). `store_app/build.py` writes a `.gz` beside each compressible file."""
from __future__ import annotations

import os

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CACHE_CONTROL = "no-cache"  # revalidate (ETag → 304): cheap, and a rebuilt bundle is never hidden by a cache


class BundleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = CACHE_CONTROL
        if not isinstance(response, FileResponse) or response.status_code != 200:
            return response
        headers = Headers(scope=scope)
        if "gzip" not in headers.get("accept-encoding", "").lower() or "range" in headers:
            return response
        gz = f"{response.path}.gz"
        try:
            stat = os.stat(gz)
        except OSError:
            return response
        etag = response.headers.get("etag", "").rstrip('"') + '-gz"'
        vary = {"Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding", "ETag": etag}
        if etag in {t.strip() for t in headers.get("if-none-match", "").split(",")}:
            return Response(status_code=304, headers=vary)
        return FileResponse(gz, stat_result=stat, media_type=response.media_type,
                            headers={**vary, "Content-Encoding": "gzip"})
