"""Build the store app as a static, offline progressive web app (Pyodide in the browser).

``storeline build-app`` calls :func:`build`. Inputs come from PyPI (wheels pinned by hash), npm (the
``pyodide`` package, checked against its published sha1) and this repository only; nothing is fetched
at run time in the browser.

Steps:
1. Fill a local Flet cache (``FLET_CACHE_DIR``) with the Pyodide runtime from the npm package plus the
   micropip/packaging wheels that ``flet_web`` ships, and write a local python-build manifest
   (``FLET_PYTHON_BUILD_MANIFEST``) so ``flet publish`` never goes to GitHub.
2. Stage the app: an entry ``main.py``, the ``store_app`` package, the ``shared`` contract package and every
   dependency unpacked into ``__pypackages__`` (pure wheels plus the Pyodide wheels of msgpack and
   pydantic-core), and a ``requirements.txt`` holding one blank line so the worker never runs micropip.
3. ``flet publish --no-cdn`` into the output directory, then the fixes: ``pyodideUrl`` made relative,
   files the canvaskit renderer never loads removed, ``app.tar.gz`` re-packed byte-reproducibly, Flutter's
   self-unregistering service worker settings removed, and our own ``sw.js`` (content-hashed precache,
   per-file reuse on update, old caches deleted on activate) registered from ``index.html``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = Path(__file__).resolve().parent
DEFAULT_DIST = APP_DIR / "dist"
BUILD_DIR = ROOT / ".build"

BASE_URL = "app"  # the backend serves the bundle at /app/
APP_NAME = "Storeline Store"
APP_SHORT_NAME = "Storeline"
THEME_COLOR = "#0B5CAD"
BACKGROUND_COLOR = "#FFFFFF"

PYTHON_SHORT = "3.14"
PYTHON_FULL = "3.14.2"
PYODIDE_VERSION = "314.0.7"
PYODIDE_NPM_SHA1 = "19a6865259f8d594cdef5b7e2f44930b68f5e987"  # `npm view pyodide@314.0.7 dist.shasum`
FLET_VERSION = "1.0.5"

# (requirement, wheel file, sha256, pyodide platform wheel?)
WHEELS: list[tuple[str, str, str, bool]] = [
    ("flet==1.0.5", "flet-1.0.5-py3-none-any.whl",
     "1bfde51f557af24cafce8092afdaf80fb778ec9d03fdf343ca46b5f0a7af2bbf", False),
    ("flet-charts==1.0.5", "flet_charts-1.0.5-py3-none-any.whl",  # the HQ trends chart (Dart side is in flet_web)
     "b222e2992b5be47f25155968d8241dc3f5ab7434e0153fb6dcd4df7b9f6eaf7b", False),
    ("repath==0.9.0", "repath-0.9.0-py3-none-any.whl",
     "ee079d6c91faeb843274d22d8f786094ee01316ecfe293a1eb6546312bb6a318", False),
    ("six==1.17.0", "six-1.17.0-py2.py3-none-any.whl",
     "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274", False),
    ("pydantic==2.14.4", "pydantic-2.14.4-py3-none-any.whl",
     "653a2ad9f6d8858529c77c72717d0ea991d6c6837fe683246b2f4b2bbfc3fadc", False),
    ("typing-extensions==4.16.0", "typing_extensions-4.16.0-py3-none-any.whl",
     "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8", False),
    ("annotated-types==0.8.0", "annotated_types-0.8.0-py3-none-any.whl",
     "f072f4d804ea359e4eaf198b1af7a8b0943881a87f31bb764f8bf219bb9419e0", False),
    ("typing-inspection==0.4.5", "typing_inspection-0.4.5-py3-none-any.whl",
     "bc210535442b39e1bf2805e0c7a17dfd6a4ace760c84c7f7d16245d23a6b1c39", False),
    ("msgpack==1.2.4", "msgpack-1.2.4-cp314-cp314-pyemscripten_2026_0_wasm32.whl",
     "06a0657a4110d563255006b7cb7147432f67827144e429c2cdb1c967548d1817", True),
    ("pydantic-core==2.50.5", "pydantic_core-2.50.5-cp314-cp314-pyemscripten_2026_0_wasm32.whl",
     "b2910ec0fa5aeb9bef70156f2b79f4783978fdcfaa7b2f1b5d1814458d2e79a1", True),
]
PYODIDE_PLATFORM = ["--platform", "pyemscripten_2026_0_wasm32", "--python-version", "3.14",
                    "--implementation", "cp", "--abi", "cp314", "--only-binary", ":all:"]
# micropip/packaging come from the installed flet_web package (Pyodide loads them with loadPackage).
RUNTIME_WHEELS = {
    "micropip-0.11.1-py3-none-any.whl": "e2d52886594fd4cd0d0847110a1c34ae0134d3a970eb4496d3b5eb31ee2d8af6",
    "packaging-26.1-py3-none-any.whl": "565acbbea54da30348b6d68b6a54373e6f777987db9f1db6966b4b3a5060d303",
}

# Files of the app package that stay out of the browser bundle.
APP_EXCLUDE = {"build.py", "devserver.py", "README.md", "dist", "__pycache__"}
# Files in the published output that the canvaskit (dart2js) renderer never loads.
TRIM_PATTERNS = [
    r"^canvaskit/(skwasm|skwasm_heavy|wimp)\.(js|wasm)$", r"\.symbols$", r"^main\.dart\.(wasm|mjs)$",
    r"^canvaskit/experimental_webparagraph/", r"\.map$", r"\.d\.ts$", r"^flutter_service_worker\.js$",
    r"^pyodide/(python|python\.bat|python\.exe|python_cli_entry\.mjs|package\.json|README\.md)$",
]
# Cached by the service worker on first use instead of at install (not needed to start).
LAZY_PATTERNS = [r"^assets/NOTICES$", r"^assets/packages/(flutter_math_fork|media_kit|wakelock_plus)/",
                 r"^pyodide/(micropip|packaging)-.*\.whl$"]
FIXED_MTIME = 1767225600  # 2026-01-01T00:00:00Z: tar entries carry this time so the archive is reproducible


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _log(msg: str) -> None:
    print(f"[build-app] {msg}", flush=True)


# ---------------------------------------------------------------- inputs
def _fetch_pyodide(cache: Path) -> Path:
    """Flet cache dir with pyodide/<version>/ filled from npm + flet_web's runtime wheels."""
    target = cache / "flet-cache" / "pyodide" / PYODIDE_VERSION
    stamp = target / ".complete"
    if stamp.exists():
        return cache / "flet-cache"
    npm_dir = cache / "npm"
    npm_dir.mkdir(parents=True, exist_ok=True)
    tgz = npm_dir / f"pyodide-{PYODIDE_VERSION}.tgz"
    if not tgz.exists() or hashlib.sha1(tgz.read_bytes()).hexdigest() != PYODIDE_NPM_SHA1:
        npm = shutil.which("npm")
        if not npm:
            raise RuntimeError(f"npm is needed to fetch pyodide@{PYODIDE_VERSION} (apt-get install -y npm)")
        _log(f"npm pack pyodide@{PYODIDE_VERSION}")
        subprocess.run([npm, "pack", f"pyodide@{PYODIDE_VERSION}", "--pack-destination", str(npm_dir),
                        "--silent"], check=True, stdout=subprocess.DEVNULL)
    digest = hashlib.sha1(tgz.read_bytes()).hexdigest()
    if digest != PYODIDE_NPM_SHA1:
        raise RuntimeError(f"pyodide tarball sha1 {digest} != {PYODIDE_NPM_SHA1}")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tarfile.open(tgz, "r:gz") as tf:
        for m in tf.getmembers():
            if not m.isfile():
                continue
            rel = Path(m.name)
            rel = Path(*rel.parts[1:]) if rel.parts and rel.parts[0] == "package" else rel
            if len(rel.parts) != 1:
                continue
            src = tf.extractfile(m)
            assert src is not None
            (target / rel.name).write_bytes(src.read())
    import flet_web

    fw_pyodide = Path(flet_web.__file__).parent / "web" / "pyodide"
    for name, sha in RUNTIME_WHEELS.items():
        src = fw_pyodide / name
        if _sha256(src) != sha:
            raise RuntimeError(f"{src} does not match its pinned sha256")
        shutil.copy2(src, target / name)
    # flet's cache check reads info.version, which the published lock file lacks.
    lock_path = target / "pyodide-lock.json"
    lock = json.loads(lock_path.read_text())
    lock.setdefault("info", {})["version"] = PYODIDE_VERSION
    lock_path.write_text(json.dumps(lock, separators=(",", ":")))
    stamp.write_text(PYODIDE_VERSION)
    return cache / "flet-cache"


def _write_manifest(cache: Path) -> Path:
    manifest = cache / "python-build-manifest.json"
    manifest.write_text(json.dumps({
        "pythons": {PYTHON_SHORT: {"full_version": PYTHON_FULL, "pyodide_version": PYODIDE_VERSION,
                                   "android_abis": []}},
        "default_python_version": PYTHON_SHORT,
    }))
    return manifest


def _fetch_wheels(cache: Path) -> list[Path]:
    wheel_dir = cache / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [w for w in WHEELS if not (wheel_dir / w[1]).exists() or _sha256(wheel_dir / w[1]) != w[2]]
    for native in (False, True):
        group = [w for w in missing if w[3] == native]
        if not group:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            for spec, _, sha, _ in group:
                req.write(f"{spec} --hash=sha256:{sha}\n")
        try:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--quiet",
                   "--disable-pip-version-check", "-d", str(wheel_dir), "-r", req.name]
            if native:
                cmd += PYODIDE_PLATFORM
            _log("pip download " + " ".join(w[0] for w in group))
            subprocess.run(cmd, check=True)
        finally:
            os.unlink(req.name)
    paths = []
    for _, name, sha, _ in WHEELS:
        p = wheel_dir / name
        if _sha256(p) != sha:
            raise RuntimeError(f"{p} does not match its pinned sha256")
        paths.append(p)
    return paths


# ---------------------------------------------------------------- staging
ENTRY = '''"""Browser entry point: Pyodide's worker runs this module as __main__."""
import flet as ft

from store_app.main import main

ft.run(main)
'''


def _stage(stage: Path, wheels: list[Path]) -> None:
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    (stage / "main.py").write_text(ENTRY)
    (stage / "requirements.txt").write_text("\n")  # one blank line: publish adds nothing, micropip never runs

    def ignore(dirpath: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo")) or n.startswith(".")}
        if Path(dirpath).resolve() == APP_DIR:
            skip |= {n for n in names if n in APP_EXCLUDE}
        return skip

    shutil.copytree(APP_DIR, stage / "store_app", ignore=ignore)
    shared = ROOT / "shared"
    if (shared / "__init__.py").exists():
        shutil.copytree(shared, stage / "shared", ignore=ignore)
    pkgs = stage / "__pypackages__"
    pkgs.mkdir()
    for whl in wheels:
        with zipfile.ZipFile(whl) as zf:
            for info in zf.infolist():
                name = info.filename
                top = name.split("/", 1)[0]
                # drop what never runs in the browser: flet's CLI/testing helpers, type stubs, RECORDs
                if top == "flet" and re.match(r"flet/(testing|pytest_plugin\.py|cli\.py|fastapi)", name):
                    continue
                if top == "flutter":
                    continue  # flet-charts' Dart sources: already compiled into flet_web's client
                if name.endswith((".pyi", "/RECORD")):
                    continue
                zf.extract(info, pkgs)


def _tar_reproducible(src: Path, out: Path) -> None:
    """tar.gz of ``src`` with sorted entries, fixed times/owners and a zero gzip timestamp."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    with out.open("wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue())


# ---------------------------------------------------------------- post-publish fixes
SW_TEMPLATE = r"""/* Storeline store app service worker (generated by store_app/build.py). */
const VERSION = "%(version)s";
const CACHE = "storeline-" + VERSION;
const FILES = %(files)s;   // path -> content hash
const PRECACHE = %(precache)s;
const scopeUrl = new URL(self.registration.scope);
const keyFor = (path) => new URL(path + "?v=" + FILES[path], scopeUrl).href;
const pathOf = (url) => {
  const u = new URL(url);
  if (u.origin !== scopeUrl.origin || !u.pathname.startsWith(scopeUrl.pathname)) return null;
  const p = u.pathname.slice(scopeUrl.pathname.length);
  return p === "" ? "index.html" : p;
};

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // reuse unchanged files from an older version's cache; download only what changed
    await Promise.all(PRECACHE.map(async (path) => {
      const key = keyFor(path);
      if (await cache.match(key)) return;
      const old = await caches.match(key);
      if (old) return cache.put(key, old);
      const resp = await fetch(new URL(path, scopeUrl).href, { cache: "reload" });
      if (!resp.ok) throw new Error("precache " + path + ": HTTP " + resp.status);
      return cache.put(key, resp);
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("storeline-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  let path = pathOf(req.url);
  if (path === null) return;               // API calls and anything outside the bundle: network
  if (req.mode === "navigate" || !(path in FILES)) {
    if (req.mode !== "navigate") return;   // not part of the bundle
    path = "index.html";                   // every navigation inside the scope gets the app shell
  }
  const key = keyFor(path);
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(key);
    if (hit) return hit;
    const resp = await fetch(req.mode === "navigate" ? new URL(path, scopeUrl).href : req);
    if (resp.ok) await cache.put(key, resp.clone());
    return resp;
  })());
});

self.addEventListener("message", (event) => {
  if (event.data === "version" && event.source) event.source.postMessage({ swVersion: VERSION });
});
"""

SW_REGISTER = """  <script>
    // Storeline: offline shell. Service workers need a secure context (HTTPS; localhost is exempt).
    window.storelineBuild = "%(version)s";
    if ("serviceWorker" in navigator) {
      window.storelineSw = navigator.serviceWorker.register("sw.js", { scope: "./" })
        .then((reg) => { reg.update().catch(() => {}); return reg; })
        .catch((e) => { console.warn("service worker registration failed", e); });
    }
    if (navigator.storage && navigator.storage.persist) {
      navigator.storage.persist().then((granted) => { window.storelinePersisted = granted; });
    }
  </script>
"""


def _post_process(dist: Path, stage: Path) -> dict:
    index = dist / "index.html"
    html = index.read_text()
    html = html.replace('flet.pyodideUrl="pyodide/pyodide.mjs"', 'flet.pyodideUrl="./pyodide/pyodide.mjs"')
    if 'flet.pyodideUrl="./pyodide/pyodide.mjs"' not in html:
        raise RuntimeError("pyodideUrl fix did not apply: flet publish output changed")

    boot = dist / "flutter_bootstrap.js"
    text = boot.read_text()
    new = re.sub(r"\s*serviceWorkerSettings:\s*\{[^{}]*\},", "", text, count=1)
    if new == text:
        raise RuntimeError("could not remove serviceWorkerSettings from flutter_bootstrap.js")
    boot.write_text(new)

    for path in sorted(dist.rglob("*")):
        if path.is_file():
            rel = path.relative_to(dist).as_posix()
            if any(re.search(p, rel) for p in TRIM_PATTERNS):
                path.unlink()
    for d in sorted((p for p in dist.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()

    _tar_reproducible(stage, dist / "app.tar.gz")

    # hash every file except index.html (hashed after the registration snippet is in) and sw.js
    files = {}
    for path in sorted(dist.rglob("*")):
        if path.is_file():
            rel = path.relative_to(dist).as_posix()
            if rel not in ("index.html", "sw.js"):
                files[rel] = _sha256(path)[:16]
    version = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    html = html.replace("</head>", SW_REGISTER % {"version": version} + "</head>", 1)
    index.write_text(html)
    files["index.html"] = _sha256(index)[:16]
    version = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    precache = [p for p in files if not any(re.search(x, p) for x in LAZY_PATTERNS)]
    (dist / "sw.js").write_text(SW_TEMPLATE % {
        "version": version, "files": json.dumps(files, indent=0, sort_keys=True),
        "precache": json.dumps(sorted(precache)),
    })
    info = {"version": version, "files": len(files) + 1, "precache": len(precache) + 0,
            "bytes": sum(p.stat().st_size for p in dist.rglob("*") if p.is_file()),
            "pyodide": PYODIDE_VERSION, "flet": FLET_VERSION}
    (dist / "build-info.json").write_text(json.dumps(info, indent=1))
    _precompress(dist)
    return info


GZIP_SUFFIXES = (".js", ".mjs", ".wasm", ".html", ".json", ".css", ".ttf", ".otf", ".svg", ".txt")


def _precompress(dist: Path) -> int:
    """A reproducible `.gz` beside each compressible file (the backend serves it to browsers that take gzip);
    written after the service worker's file list, which names only the originals. Returns how many."""
    n = 0
    for path in sorted(dist.rglob("*")):
        if not path.is_file() or path.suffix not in GZIP_SUFFIXES or path.stat().st_size < 1024:
            continue
        data = path.read_bytes()
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(data)
        if len(buf.getvalue()) < 0.9 * len(data):
            path.with_name(path.name + ".gz").write_bytes(buf.getvalue())
            n += 1
    return n


# ---------------------------------------------------------------- entry
def _inputs_digest(wheels: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(APP_DIR.rglob("*")) + sorted((ROOT / "shared").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and not p.is_relative_to(APP_DIR / "dist"):
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    for w in wheels:
        h.update(w.name.encode())
    h.update(PYODIDE_VERSION.encode())
    return h.hexdigest()


def build(dist: Path | None = None, force: bool = False) -> Path:
    """Build the static bundle into ``dist`` (default ``store_app/dist``); return its directory.

    Skips the work when the inputs (app sources, contract package, pinned wheels) have not changed since
    the last build into the same directory, unless ``force``.
    """
    dist = Path(dist or DEFAULT_DIST).resolve()
    cache = BUILD_DIR
    cache.mkdir(parents=True, exist_ok=True)
    wheels = _fetch_wheels(cache)
    digest = _inputs_digest(wheels)
    stamp = dist / ".inputs"
    if not force and stamp.exists() and stamp.read_text() == digest and (dist / "sw.js").exists():
        _log(f"up to date: {dist}")
        return dist
    flet_cache = _fetch_pyodide(cache)
    manifest = _write_manifest(cache)
    stage = cache / "stage"
    _stage(stage, wheels)

    env = dict(os.environ, FLET_PYTHON_BUILD_MANIFEST=str(manifest), FLET_CACHE_DIR=str(flet_cache),
               PYTHONUTF8="1", FLET_CLI_NO_RICH_OUTPUT="1")
    env.pop("FLET_WEB_NO_CDN", None)
    cmd = [sys.executable, "-c", "import sys; from flet.cli import main; sys.exit(main())", "publish",
           str(stage / "main.py"), "--no-cdn", "--distpath", str(dist), "--base-url", BASE_URL,
           "--app-name", APP_NAME, "--app-short-name", APP_SHORT_NAME,
           "--app-description", "Pick, pack and hand over store orders, online or offline.",
           "--web-renderer", "canvaskit", "--route-url-strategy", "hash",
           "--pwa-theme-color", THEME_COLOR, "--pwa-background-color", BACKGROUND_COLOR]
    _log("flet publish --no-cdn")
    proc = subprocess.run(cmd, cwd=stage, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not (dist / "index.html").exists():
        raise RuntimeError(f"flet publish failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    info = _post_process(dist, stage)
    stamp.write_text(digest)
    _log(f"built {dist} version {info['version']}: {info['files']} files, {info['bytes'] / 1e6:.1f} MB")
    return dist


if __name__ == "__main__":  # python -m store_app.build [--force] [DIST]
    args = [a for a in sys.argv[1:] if a != "--force"]
    build(Path(args[0]) if args else None, force="--force" in sys.argv)
