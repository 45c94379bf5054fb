"""Pieces of the static build that need no network: reproducible app archive, staging filters."""

from __future__ import annotations

import hashlib
import os
import tarfile

from store_app import build


def test_app_archive_is_byte_reproducible(tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "main.py").write_text("print('hi')\n")
    (src / "pkg" / "__init__.py").write_text("")
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    build._tar_reproducible(src, a)
    os.utime(src / "main.py", (1, 1))  # a different file time must not change the archive
    build._tar_reproducible(src, b)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    with tarfile.open(a) as tf:
        assert tf.getnames() == ["main.py", "pkg", "pkg/__init__.py"]
        assert {m.mtime for m in tf.getmembers()} == {build.FIXED_MTIME}


def test_wheels_are_pinned_by_hash():
    names = {w[0].split("==")[0] for w in build.WHEELS}
    assert {"flet", "repath", "six", "msgpack", "pydantic", "pydantic-core"} <= names
    assert all("==" in w[0] and len(w[2]) == 64 for w in build.WHEELS)
    native = {w[0] for w in build.WHEELS if w[3]}
    assert native == {"msgpack==1.2.4", "pydantic-core==2.50.5"}
    assert all("pyemscripten_2026_0_wasm32" in w[1] for w in build.WHEELS if w[3])
