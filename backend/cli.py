"""The `storeline` command: serve, seed, simulate, store-app, build-app, demo, bench."""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storeline", description="Storeline order management")
    sub = parser.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the backend")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)

    m = sub.add_parser("migrate", help="bring the database schema up to date")
    m.set_defaults(cmd="migrate")

    sd = sub.add_parser("seed", help="load data")
    sd.add_argument("what", choices=["demo"])
    sd.add_argument("--stores", type=int, default=50)
    sd.add_argument("--history-days", type=int, default=28,
                    help="past days of fulfilled orders, rejections and counts for the HQ screens (0: none)")
    sd.add_argument("--skus", type=int, default=2000)
    sd.add_argument("--seed", type=int, default=42)

    sim = sub.add_parser("simulate", help="post a stream of orders through the HTTP API")
    sim.add_argument("--url", default="http://127.0.0.1:8000")
    sim.add_argument("--rate", type=float, default=1.0, help="orders per second")
    sim.add_argument("--count", type=int, default=0, help="stop after this many orders (0: run until stopped)")
    sim.add_argument("--seed", type=int, default=7)

    sa = sub.add_parser("store-app", help="run the store app in Flet's web mode (development)")
    sa.add_argument("--port", type=int, default=8550)
    sa.add_argument("--api", default="http://127.0.0.1:8000")

    ba = sub.add_parser("build-app", help="build the static, offline store app bundle")
    ba.add_argument("--force", action="store_true")

    d = sub.add_parser("demo", help="seed, serve, simulate and open the store app")
    d.add_argument("--port", type=int, default=8000)
    d.add_argument("--rate", type=float, default=0.5)
    d.add_argument("--no-app", action="store_true", help="skip building the store app bundle")

    b = sub.add_parser("bench", help="benchmarks")
    b.add_argument("what", help="routing | inventory | sync | load | promise | hq")
    b.add_argument("rest", nargs=argparse.REMAINDER)

    args = parser.parse_args(argv)
    if args.cmd == "serve":
        from backend.server import serve

        return serve(args.host, args.port, args.workers)
    if args.cmd == "migrate":
        from backend.db import get_engine
        from backend.migrate import upgrade

        upgrade(get_engine())
        print("schema is up to date")
        return 0
    if args.cmd == "seed":
        from backend.seed.demo import seed_demo

        seed_demo(stores=args.stores, skus=args.skus, seed=args.seed, verbose=True, history_days=args.history_days)
        return 0
    if args.cmd == "simulate":
        from backend.simulate import run

        return run(args.url, args.rate, args.count, args.seed)
    if args.cmd == "store-app":
        from store_app.devserver import run as run_app

        run_app(args.port, args.api)
        return 0
    if args.cmd == "build-app":
        from store_app.build import build

        print(build(force=args.force))
        return 0
    if args.cmd == "demo":
        from backend.demo import run_demo

        return run_demo(args.port, args.rate, build_app=not args.no_app)
    if args.cmd == "bench":
        import importlib

        try:
            module = importlib.import_module(f"backend.bench.{args.what}")
        except ModuleNotFoundError:
            print(f"unknown benchmark {args.what!r}", file=sys.stderr)
            return 2
        return int(module.main(args.rest) or 0)
    return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
