"""Measure the store app bundle and its speed in headless Chromium (a benchmark, not a test).

    python -m tests.browser.measure [--runs 3] [--backend fake|real]

Prints: bundle size (raw and gzip -6 per file, total and what the service worker precaches), first load
(empty cache, to the sign-in screen), warm start (reload with the service worker's cache), offline warm start
(server stopped), and tap-to-effect online and offline: from the Enter of a scan (keyboard wedge) to the
changed text in the page's semantics tree, measured inside the page with performance.now().
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import CHROMIUM, Server, backend_mode
from tests.browser.helpers import EARLY_SEMANTICS, field, login, open_order, wait_ready

TAP_PROBE = """([id, pattern]) => ({done: new Promise((resolve) => {
  // from the scanner's Enter (keydown, captured before Flutter sees it) to the changed text in the page
  let start = null;
  const rx = new RegExp(pattern);
  const read = () => { const n = document.querySelector(`[flt-semantics-identifier="${id}"]`);
    return n ? (n.getAttribute('aria-label') || '') + ' ' + n.textContent : ''; };
  const onKey = (e) => { if (e.key === 'Enter') start = performance.now(); };
  document.addEventListener('keydown', onKey, {capture: true});
  const obs = new MutationObserver(() => {
    if (start !== null && rx.test(read())) {
      obs.disconnect(); document.removeEventListener('keydown', onKey, {capture: true});
      resolve(performance.now() - start); } });
  obs.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
})})"""  # wrapped in an object: evaluate_handle would otherwise wait for the promise


def bundle_size(dist: Path) -> dict:
    sw = (dist / "sw.js").read_text()
    precache = set(json.loads(re.search(r"const PRECACHE = (\[.*?\]);", sw, re.S).group(1)))
    raw = gz = raw_pre = gz_pre = 0
    for p in dist.rglob("*"):
        if not p.is_file() or (p.suffix == ".gz" and p.name != "app.tar.gz"):
            continue  # the .gz twins the backend serves are the same files, compressed
        data = p.read_bytes()
        z = len(gzip.compress(data, 6))
        raw += len(data)
        gz += z
        rel = p.relative_to(dist).as_posix()
        if rel in precache or rel == "index.html":
            raw_pre += len(data)
            gz_pre += z
    app = dist / "app.tar.gz"
    return {"files_mb": raw / 1e6, "files_gzip_mb": gz / 1e6, "precache_mb": raw_pre / 1e6,
            "precache_gzip_mb": gz_pre / 1e6, "app_tar_gz_kb": app.stat().st_size / 1e3}


def tap_times(page, code: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        probe = page.evaluate_handle(TAP_PROBE, ["pick-progress", rf"Picked {i + 1 + tap_times.done} of"])
        expect(field(page, "scan")).to_be_focused(timeout=15_000)
        page.keyboard.type(code)
        expect(field(page, "scan")).to_have_value(code, timeout=5_000)
        page.keyboard.press("Enter")
        ms = page.evaluate("h => Promise.race([h.done, new Promise(r => setTimeout(() => r(-1), 15000))])", probe)
        print(f"  tap {i + 1}: {ms:.0f} ms", flush=True)
        if ms >= 0:
            out.append(float(ms))
    tap_times.done += n
    return out


tap_times.done = 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--taps", type=int, default=10)
    ap.add_argument("--backend", default=None)
    args = ap.parse_args()
    from store_app.build import build

    dist = build()
    print("bundle:", {k: round(v, 2) for k, v in bundle_size(dist).items()}, flush=True)
    mode = args.backend or backend_mode()
    work = Path(tempfile.mkdtemp(prefix="storeline-measure-"))
    srv = Server(mode, work, dist)
    if mode == "real":
        raise SystemExit("real-backend measurement: use the browser test fixtures once sync exists")
    srv.start()
    first, warm, offline_warm = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for run in range(args.runs):
            ctx = browser.new_context(viewport={"width": 1024, "height": 768})
            ctx.route("https://**", lambda r: r.abort())
            page = ctx.new_page()
            page.add_init_script(EARLY_SEMANTICS)
            t = time.perf_counter()
            page.goto(f"{srv.url}/app/")
            wait_ready(page)
            first.append(time.perf_counter() - t)
            print(f"first load {first[-1]:.1f} s", flush=True)
            page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=120_000)
            t = time.perf_counter()
            page.reload()
            wait_ready(page)
            warm.append(time.perf_counter() - t)
            print(f"warm start {warm[-1]:.1f} s", flush=True)
            if run == args.runs - 1:
                login(page, "s101-ana", "1234")
                open_order(page, "W-1007")
                field(page, "scan").wait_for()
                online = tap_times(page, "0012345678905", args.taps)
                srv.stop()
                offline = tap_times(page, "0012345678905", args.taps)
                t = time.perf_counter()
                page.reload()
                wait_ready(page)
                offline_warm.append(time.perf_counter() - t)
                srv.start()
            ctx.close()
        browser.close()
    srv.close()

    def fmt(xs: list[float], unit: str = "s") -> str:
        return f"median {statistics.median(xs):.2f} {unit} (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"

    print("first load to sign-in:", fmt(first))
    print("warm start (service worker cache):", fmt(warm))
    print("warm start, server stopped:", fmt(offline_warm))
    print("tap-to-effect online:", fmt(online, "ms"))
    print("tap-to-effect offline:", fmt(offline, "ms"))


if __name__ == "__main__":
    main()
