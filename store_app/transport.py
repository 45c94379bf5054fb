"""The only part that differs between the two runtimes: how the app reaches the backend.

* In the browser (Pyodide, ``sys.platform == "emscripten"``): ``pyodide.http.pyfetch`` with a timeout. The
  bundle is served by the backend at ``/app/``, so API paths are same-origin and relative.
* Elsewhere (Flet's server web mode, tests): ``httpx.AsyncClient`` against ``api_url``.

Both raise :class:`Offline` when the server cannot be reached (OSError, TimeoutError) and return
``(status, json_or_none)`` otherwise. No threads, no sockets in app code.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from urllib.parse import urlencode

IN_BROWSER = sys.platform == "emscripten"


class Offline(Exception):
    """The server could not be reached (no network, server down, timeout)."""


class Response:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    def __repr__(self) -> str:
        return f"Response({self.status}, {str(self.body)[:80]})"


class Transport:
    timeout = 8.0

    async def request(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
                      form: dict | None = None, params: dict | None = None, timeout: float | None = None
                      ) -> Response:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class PyfetchTransport(Transport):
    def __init__(self, base: str = "") -> None:
        self.base = base.rstrip("/")

    async def request(self, method, path, *, token=None, json_body=None, form=None, params=None, timeout=None):
        from pyodide.http import pyfetch  # only importable in the browser

        url = self.base + path + (("?" + urlencode(params)) if params else "")
        headers = {"Accept": "application/json"}
        body = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(json_body)
        elif form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form)
        try:
            resp = await asyncio.wait_for(
                pyfetch(url, method=method, headers=headers, body=body, cache="no-store"), timeout or self.timeout)
            text = await asyncio.wait_for(resp.text(), timeout or self.timeout)
        except (OSError, TimeoutError) as e:  # AbortError & co. subclass OSError
            raise Offline(str(e) or type(e).__name__) from e
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        return Response(resp.status, data)


class HttpxTransport(Transport):
    def __init__(self, base: str) -> None:
        import httpx

        self.base = base.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.base, timeout=self.timeout)
        self._httpx = httpx

    async def request(self, method, path, *, token=None, json_body=None, form=None, params=None, timeout=None):
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = await asyncio.wait_for(self._client.request(
                method, path, headers=headers, json=json_body, data=form, params=params), timeout or self.timeout)
        except (self._httpx.TransportError, OSError, TimeoutError) as e:
            raise Offline(str(e) or type(e).__name__) from e
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = None
        return Response(resp.status_code, data)

    async def aclose(self) -> None:
        await self._client.aclose()


def make_transport(api_url: str | None = None) -> Transport:
    if IN_BROWSER:
        return PyfetchTransport(api_url or "")
    return HttpxTransport(api_url or "http://127.0.0.1:8000")
