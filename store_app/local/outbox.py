"""Taps become actions: applied to the local task at once and appended to the outbox in one transaction.

The screens show ``tasks.view``, which is the server's copy of a task (``tasks.server``) with this tablet's
not-yet-confirmed actions re-applied on top, in outbox order (a rebase, as Replicache does). After a push
the server's verdict is stored on each action; after the following full pull, applied actions are
"confirmed" (the server copy carries their effect) and rejected ones stay visible as conflicts on their
order until the associate dismisses them. Nothing the associate did is deleted.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from store_app.local.db import LocalDB, dumps, loads

ACTION_FIELDS = ("task_id", "line_id", "quantity", "barcode", "reason", "note", "packages", "box", "weight_kg",
                 "carrier", "tracking", "pickup_code", "sku", "counted", "assignee")
TASK_ACTIONS = {"claim", "assign", "pick", "reject", "pack", "handover_carrier", "handover_customer"}

CONFLICT_WORDS = {
    "order_cancelled": "The customer cancelled this order while you were working on it. "
                       "Put the items back on the shelf.",
    "cancelled": "The customer cancelled this order while you were working on it. Put the items back on the shelf.",
    "rerouted": "This order was moved to another store while you were working on it. "
                "Put the items back on the shelf.",
    "claimed_by_other": "Another associate is already working on this order.",
    "wrong_barcode": "The scanned barcode does not belong to this item.",
    "task_done": "This order was already finished on another device.",
    "pickup_code_mismatch": "The pickup code did not match this order.",
    "wrong_pickup_code": "The pickup code did not match this order.",
    "wrong_state": "This order had already moved on (another device or the office changed it).",
    "over_quantity": "More units than the order still needs: someone else picked or rejected them already.",
    "note_required": "This reason needs a note.",
    "unknown_line": "This line is no longer on the order.",
    "wrong_location": "This order now belongs to another store.",
    "forbidden": "Your role may not do this.",
    "unknown_user": "That person is not on this store's staff.",
    "not_found": "The server no longer has this order.",
    "unknown_task": "The server no longer has this order.",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def line_done(line: dict) -> bool:
    return int(line.get("picked") or 0) + int(line.get("rejected") or 0) >= int(line.get("quantity") or 0)


def remaining(line: dict) -> int:
    return max(0, int(line.get("quantity") or 0) - int(line.get("picked") or 0) - int(line.get("rejected") or 0))


def _after_lines(task: dict) -> None:
    if task.get("step") != "pick" or not all(line_done(x) for x in task.get("lines", [])):
        return
    if sum(int(x.get("picked") or 0) for x in task["lines"]) == 0:
        task["step"] = "done"  # every line given back: the order leaves this store's queue
    elif task.get("delivery_method") == "pickup":
        task["step"] = "handover"
    else:
        task["step"] = "pack"


def apply_action(task: dict | None, action: dict) -> dict | None:
    """The local effect of one action on a task (the server re-runs the intent authoritatively)."""
    if task is None:
        return None
    task = copy.deepcopy(task)
    kind = action["type"]
    actor = action.get("username")
    if kind in ("pick", "reject", "pack", "handover_carrier", "handover_customer", "claim") and not task.get(
            "assignee"):
        task["assignee"] = actor
    if kind == "assign":
        task["assignee"] = action.get("assignee")
    elif kind in ("pick", "reject"):
        for line in task.get("lines", []):
            if line.get("line_id") == action.get("line_id"):
                qty = min(int(action.get("quantity") or 1), remaining(line))
                line["picked" if kind == "pick" else "rejected"] = int(line.get(
                    "picked" if kind == "pick" else "rejected") or 0) + qty
                if kind == "reject":
                    line.setdefault("rejections", []).append(
                        {"quantity": qty, "reason": action.get("reason"), "note": action.get("note")})
        _after_lines(task)
    elif kind == "pack" and task.get("step") == "pack":
        task["step"] = "handover"
        task["packed"] = {k: action.get(k) for k in ("packages", "box", "weight_kg")}
    elif kind in ("handover_carrier", "handover_customer") and task.get("step") == "handover":
        task["step"] = "done"
    return task


class Outbox:
    def __init__(self, db: LocalDB) -> None:
        self.db = db

    # ------------------------------------------------------------ recording taps
    def record(self, type: str, username: str, **fields: Any) -> dict:
        """Apply one action locally and append it to the outbox, in one SQLite transaction."""
        action = {"id": str(uuid.uuid4()), "type": type, "at": now_iso()}
        action.update({k: v for k, v in fields.items() if k in ACTION_FIELDS and v is not None})
        with self.db.transaction() as c:
            c.execute("INSERT INTO outbox(id, username, type, task_id, body, created_at) VALUES (?,?,?,?,?,?)",
                      (action["id"], username, type, action.get("task_id"), dumps(action), action["at"]))
            if action.get("task_id"):
                self.rebase(action["task_id"])
        return action

    # ------------------------------------------------------------ rebase
    def rebase(self, task_id: str) -> dict | None:
        """Recompute ``tasks.view`` = server copy + unconfirmed applied/pending actions, in order."""
        row = self.db.one("SELECT server, view FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            return None
        server = loads(row["server"])
        view = server
        if view is None:  # deleted on the server: keep showing the last view for the conflict card
            view = loads(row["view"])
            if view is not None:
                view["step"] = "done"
            removed = 1
        else:
            removed = 1 if server.get("step") == "done" else 0
            for a in self.db.query(
                    "SELECT body, username FROM outbox WHERE task_id = ? AND (state = 'pending' OR "
                    "(state = 'applied' AND confirmed = 0)) ORDER BY seq", (task_id,)):
                view = apply_action(view, {**loads(a["body"]), "username": a["username"]})
        self.db.conn.execute(
            "UPDATE tasks SET view = ?, step = ?, removed = ?, assignee = ? WHERE id = ?",
            (dumps(view), view.get("step", "done"), removed, view.get("assignee"), task_id))
        return view

    # ------------------------------------------------------------ sync support
    def waiting(self, username: str | None = None) -> int:
        if username:
            return self.db.one("SELECT COUNT(*) n FROM outbox WHERE state = 'pending' AND username = ?",
                               (username,))["n"]
        return self.db.one("SELECT COUNT(*) n FROM outbox WHERE state = 'pending'")["n"]

    def pending_users(self) -> list[str]:
        return [r["username"] for r in self.db.query(
            "SELECT DISTINCT username FROM outbox WHERE state = 'pending' ORDER BY username")]

    def batch(self, username: str, limit: int = 200) -> list[dict]:
        """The oldest pending actions of one user, in the shape of the push body."""
        rows = self.db.query("SELECT body FROM outbox WHERE state = 'pending' AND username = ? ORDER BY seq LIMIT ?",
                             (username, limit))
        return [loads(r["body"]) for r in rows]

    def mark_attempt(self, ids: list[str]) -> None:
        with self.db.transaction() as c:
            c.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids])

    def store_results(self, results: list[dict]) -> set[str]:
        """Save the server's verdict per action; return the task ids whose view may change."""
        touched: set[str] = set()
        at = now_iso()
        with self.db.transaction() as c:
            for r in results:
                status = r.get("status")
                if status not in ("applied", "rejected"):
                    continue  # unknown verdict: leave pending, it is retried with the same id
                row = self.db.one("SELECT task_id FROM outbox WHERE id = ?", (r.get("id"),))
                if row is None:
                    continue
                c.execute("UPDATE outbox SET state = ?, code = ?, message = ?, synced_at = ? WHERE id = ? "
                          "AND state = 'pending'", (status, r.get("code"), r.get("message"), at, r.get("id")))
                if row["task_id"]:
                    touched.add(row["task_id"])
            for t in touched:
                self.rebase(t)
        return touched

    def confirm_applied(self, before: str) -> None:
        """After a complete pull: applied actions synced before it started are in the server copy now."""
        with self.db.transaction() as c:
            tasks = [r["task_id"] for r in self.db.query(
                "SELECT DISTINCT task_id FROM outbox WHERE state = 'applied' AND confirmed = 0 AND synced_at <= ?"
                " AND task_id IS NOT NULL", (before,))]
            c.execute("UPDATE outbox SET confirmed = 1 WHERE state = 'applied' AND confirmed = 0 AND synced_at <= ?",
                      (before,))
            for t in tasks:
                self.rebase(t)

    # ------------------------------------------------------------ conflicts
    def conflicts(self, task_id: str | None = None) -> list[dict]:
        sql = ("SELECT id, type, task_id, body, code, message, synced_at FROM outbox WHERE state = 'rejected' "
               "AND dismissed = 0")
        params: tuple = ()
        if task_id:
            sql += " AND task_id = ?"
            params = (task_id,)
        return [dict(r) | {"body": loads(r["body"])} for r in self.db.query(sql + " ORDER BY seq", params)]

    def dismiss(self, task_id: str) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE outbox SET dismissed = 1 WHERE task_id = ? AND state = 'rejected'", (task_id,))

    def history(self, type: str, limit: int = 20) -> list[dict]:
        return [dict(r) | {"body": loads(r["body"])} for r in self.db.query(
            "SELECT id, state, code, message, body, created_at FROM outbox WHERE type = ? ORDER BY seq DESC LIMIT ?",
            (type, limit))]


def conflict_text(code: str | None, message: str | None) -> str:
    words = CONFLICT_WORDS.get(code or "")
    if words:
        return words
    return message or f"The server did not accept this ({code or 'no reason given'})."
