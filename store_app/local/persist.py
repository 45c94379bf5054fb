"""Where the SQLite file lives, and how writes reach durable storage.

Browser: an IDBFS mount at ``/storeline`` (Emscripten's IndexedDB-backed file system). It is loaded with
``FS.syncfs(true)`` before SQLite opens the file and written back with ``FS.syncfs(false)`` after each
committed transaction; flushes are coalesced and never overlap. Elsewhere: a plain file, nothing to flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

from store_app.transport import IN_BROWSER

MOUNT = "/storeline"


async def _syncfs(populate: bool) -> None:
    import pyodide_js
    from pyodide.ffi import create_once_callable

    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def done(err=None):
        if not fut.done():
            if err:
                fut.set_exception(OSError(f"FS.syncfs failed: {err}"))
            else:
                fut.set_result(None)

    pyodide_js.FS.syncfs(populate, create_once_callable(done))
    await fut


async def open_storage(local_dir: str | None = None) -> str:
    """Prepare durable storage; return the SQLite path to open."""
    if not IN_BROWSER:
        directory = local_dir or os.path.join(os.getcwd(), ".build", "store-app-data")
        os.makedirs(directory, exist_ok=True)
        return os.path.join(directory, "store.db")
    import js
    import pyodide_js
    from pyodide.ffi import to_js

    fs = pyodide_js.FS
    with contextlib.suppress(Exception):  # already there
        fs.mkdir(MOUNT)
    fs.mount(fs.filesystems.IDBFS, to_js({}, dict_converter=js.Object.fromEntries), MOUNT)
    await _syncfs(True)
    return f"{MOUNT}/store.db"


class Flusher:
    """Coalesces FS.syncfs(false) calls; ``saved`` listeners run once the data is in IndexedDB."""

    def __init__(self) -> None:
        self.wanted = 0
        self.done = 0
        self.running = False
        self.errors = 0
        self.listeners: list[Callable[[], None]] = []

    def schedule(self) -> None:
        self.wanted += 1
        if not IN_BROWSER:
            self.done = self.wanted
            self._notify()
            return
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self.done < self.wanted:
                target = self.wanted
                try:
                    await _syncfs(False)
                    self.done = target
                except OSError:
                    self.errors += 1
                    await asyncio.sleep(0.5)
                self._notify()
        finally:
            self.running = False

    def _notify(self) -> None:
        for fn in list(self.listeners):
            fn()

    @property
    def clean(self) -> bool:
        return self.done >= self.wanted
