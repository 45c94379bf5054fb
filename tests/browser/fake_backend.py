"""A small in-memory stand-in for the Storeline backend's tablet contract (auth, me, sync pull/push, workload).

Used only when ``STORELINE_FAKE_BACKEND=1`` (developing the app before the real sync endpoints exist); the
browser tests otherwise start the real backend. It follows MISSION.md's payload shapes and adds ``/_test``
endpoints to cancel an order and to read how many times each action id was applied.

Run: ``python tests/browser/fake_backend.py PORT APP_DIR``
"""

from __future__ import annotations

import hashlib
import os
import pickle
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import Depends, FastAPI, Form, Header, HTTPException
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

USERS = {"s101-ana": ("1234", "associate", "Ana"), "s101-ben": ("5678", "associate", "Ben"),
         "s101-mia": ("9999", "manager", "Mia")}
PRODUCTS = [("SKU-00042", "Trail runner 42", ["0012345678905"]), ("SKU-00007", "Rain jacket M", ["4006381333931"]),
            ("SKU-00100", "Water bottle", ["5012345678900"]), ("SKU-00200", "Wool socks", ["7612345678906"])]
PICKUP_CODE = "4821"


class World:
    def __init__(self) -> None:
        self.version = 0
        self.log: list[tuple[int, dict]] = []
        self.tasks: dict[str, dict] = {}
        self.deleted: set[str] = set()
        self.results: dict[str, dict] = {}
        self.applied: dict[str, int] = {}
        self.counts: list[dict] = []
        self.tokens: dict[str, str] = {}
        now = datetime.now(UTC)
        for sku, name, codes in PRODUCTS:
            self.emit("product", sku, {"sku": sku, "name": name, "barcodes": codes})
        for code, label, note in [("not_found", "Not found on the shelf", False), ("damaged", "Damaged", False),
                                  ("wrong_item", "Wrong item on the shelf", False),
                                  ("customer_hold", "Held for a customer in the store", False),
                                  ("other", "Other (add a note)", True)]:
            self.emit("reason_code", code, {"code": code, "label": label, "needs_note": note})
        for u, (_, role, _) in USERS.items():
            self.emit("user", u, {"username": u, "role": role})
        specs = [("W-1001", "standard", 90, [("1", 0, 1), ("2", 1, 1)]),
                 ("W-1002", "same_day", -20, [("1", 0, 2)]),
                 ("W-1003", "pickup", 45, [("1", 2, 1)]),
                 ("W-1004", "next_day", 300, [("1", 3, 2), ("2", 0, 1)]),
                 ("W-1005", "standard", 600, [("1", 1, 1)]),
                 ("W-1006", "same_day", 120, [("1", 2, 1), ("2", 3, 1)]),
                 ("W-1007", "standard", 900, [("1", 0, 30)])]
        for n, (number, method, minutes, lines) in enumerate(specs, 1):
            tid = f"T{n}"
            task = {"id": tid, "order_id": f"O{n}", "order_number": number, "step": "pick",
                    "delivery_method": method, "promise_by": (now + timedelta(minutes=minutes)).isoformat(),
                    "assignee": None, "lines": [
                        {"line_id": lid, "sku": PRODUCTS[p][0], "name": PRODUCTS[p][1], "quantity": q, "picked": 0,
                         "rejected": 0, "barcodes": PRODUCTS[p][2]} for lid, p, q in lines]}
            if method == "pickup":
                task["pickup_code_sha256"] = hashlib.sha256(f"{tid}:{PICKUP_CODE}".encode()).hexdigest()
            self.tasks[tid] = task
            self.emit("task", tid, task)

    def emit(self, entity: str, key: str, data: dict | None) -> None:
        self.version += 1
        self.log.append((self.version, {"entity": entity, "op": "delete" if data is None else "upsert", "id": key,
                                        "data": dict(data) if data else {}}))

    def cancel(self, number: str) -> str:
        tid = next(t for t, x in self.tasks.items() if x["order_number"] == number)
        self.deleted.add(tid)
        self.emit("task", tid, None)
        return tid

    def apply(self, a: dict, user: str) -> dict:
        if a["id"] in self.results:
            return self.results[a["id"]]
        res = self._apply(a, user)
        res = {"id": a["id"], **res}
        self.results[a["id"]] = res
        if res["status"] == "applied":
            self.applied[a["id"]] = self.applied.get(a["id"], 0) + 1
        return res

    def _apply(self, a: dict, user: str) -> dict:
        kind = a.get("type")
        if kind == "count":
            self.counts.append({"sku": a.get("sku"), "counted": a.get("counted")})
            return {"status": "applied", "code": None, "message": None}
        tid = a.get("task_id")
        if tid in self.deleted:
            return {"status": "rejected", "code": "order_cancelled", "message": "The order was cancelled."}
        task = self.tasks.get(tid)
        if task is None:
            return {"status": "rejected", "code": "unknown_task", "message": "No such task."}
        role = USERS[user][1]
        if kind == "assign":
            if role != "manager":
                return {"status": "rejected", "code": "forbidden", "message": "Managers only."}
            task["assignee"] = a.get("assignee")
        else:
            if task["assignee"] and task["assignee"] != user and role != "manager":
                return {"status": "rejected", "code": "claimed_by_other",
                        "message": f"{task['assignee']} is working on this order."}
            task["assignee"] = task["assignee"] or user
        if kind in ("pick", "reject"):
            line = next((x for x in task["lines"] if x["line_id"] == a.get("line_id")), None)
            if line is None or task["step"] != "pick":
                return {"status": "rejected", "code": "invalid_step", "message": "Not picking."}
            if kind == "pick" and a.get("barcode") and a["barcode"] not in line["barcodes"]:
                return {"status": "rejected", "code": "wrong_barcode", "message": "Wrong barcode."}
            qty = int(a.get("quantity") or 1)
            if line["picked"] + line["rejected"] + qty > line["quantity"]:
                return {"status": "rejected", "code": "too_many", "message": "More than ordered."}
            line["picked" if kind == "pick" else "rejected"] += qty
            if all(x["picked"] + x["rejected"] >= x["quantity"] for x in task["lines"]):
                if sum(x["picked"] for x in task["lines"]) == 0:
                    task["step"] = "done"
                else:
                    task["step"] = "handover" if task["delivery_method"] == "pickup" else "pack"
        elif kind == "pack":
            if task["step"] != "pack":
                return {"status": "rejected", "code": "invalid_step", "message": "Not packing."}
            task["step"] = "handover"
        elif kind in ("handover_carrier", "handover_customer"):
            if task["step"] != "handover":
                return {"status": "rejected", "code": "invalid_step", "message": "Not ready."}
            if kind == "handover_customer" and a.get("pickup_code") != PICKUP_CODE:
                return {"status": "rejected", "code": "wrong_pickup_code", "message": "Wrong code."}
            task["step"] = "done"
        self.emit("task", tid, task)
        return {"status": "applied", "code": None, "message": None}


def create_app(app_dir: Path | None, state_file: Path | None = None) -> FastAPI:
    """``state_file``: the world is kept there (pickle) so a restarted server continues where it stopped."""
    app = FastAPI()
    if state_file and state_file.exists():
        app.state.world = pickle.loads(state_file.read_bytes())
    else:
        app.state.world = World()

    @app.middleware("http")
    async def save(request, call_next):
        response = await call_next(request)
        if state_file and request.method == "POST":
            state_file.write_bytes(pickle.dumps(app.state.world))
        return response

    def world() -> World:
        return app.state.world

    def user(authorization: str = Header(default="")) -> str:
        token = authorization.removeprefix("Bearer ").strip()
        name = app.state.world.tokens.get(token)
        if not name:
            raise HTTPException(401, detail="unauthorised")
        return name

    @app.post("/api/v1/auth/token")
    def token(username: str = Form(), password: str = Form()):
        if USERS.get(username, ("",))[0] != password:
            return JSONResponse({"code": "bad_credentials", "message": "Wrong user or PIN"}, status_code=401)
        tok = secrets.token_hex(16)
        world().tokens[tok] = username
        return {"access_token": tok, "token_type": "bearer", "expires_in": 3600}

    @app.get("/api/v1/me")
    def me(u: str = Depends(user)):
        return {"username": u, "role": USERS[u][1], "store": "S101", "name": USERS[u][2]}

    @app.get("/api/v1/sync/pull")
    def pull(cursor: str | None = None, u: str = Depends(user)):
        since = int(cursor or 0)
        page = [c for v, c in world().log if v > since][:50]
        last = next((v for v, c in world().log if c is page[-1]), since) if page else max(since, 0)
        return {"cursor": str(last), "has_more": any(v > last for v, _ in world().log), "changes": page}

    @app.post("/api/v1/sync/push")
    def push(body: dict, u: str = Depends(user)):
        results = [world().apply(a, u) for a in body.get("actions", [])]
        return {"results": results, "cursor": str(world().version)}

    @app.get("/api/v1/stores/{code}/workload")
    def workload(code: str, u: str = Depends(user)):
        open_tasks = [t for k, t in world().tasks.items() if k not in world().deleted and t["step"] != "done"]
        steps: dict[str, int] = {}
        people: dict[str, int] = {}
        for t in open_tasks:
            steps[t["step"]] = steps.get(t["step"], 0) + 1
            people[t["assignee"] or "unassigned"] = people.get(t["assignee"] or "unassigned", 0) + 1
        return {"store": code, "by_step": steps, "by_associate": people}

    @app.post("/_test/cancel/{number}")
    def cancel(number: str):
        return {"task_id": world().cancel(number)}

    @app.get("/_test/state")
    def state():
        return {"applied": world().applied, "tasks": world().tasks, "counts": world().counts}

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/")
    def root():
        return RedirectResponse("/app/")

    if app_dir and (app_dir / "index.html").exists():
        app.mount("/app", StaticFiles(directory=app_dir, html=True), name="app")
    return app


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8780
    app_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[2] / "store_app" / "dist"
    state = os.environ.get("FAKE_STATE_FILE")
    uvicorn.run(create_app(app_dir, Path(state) if state else None), host="127.0.0.1", port=port,
                log_level="warning")
