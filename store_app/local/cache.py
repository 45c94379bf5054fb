"""The local copy of the store's data (from ``GET /sync/pull``) and the read queries the screens use."""

from __future__ import annotations

from typing import Any

from store_app.local.db import LocalDB, dumps, loads
from store_app.local.outbox import Outbox

DEFAULT_REASONS = [
    ("not_found", "Not found on the shelf", False),
    ("damaged", "Damaged", False),
    ("wrong_item", "Wrong item on the shelf", False),
    ("customer_hold", "Held for a customer in the store", False),
    ("other", "Other (add a note)", True),
]


class Cache:
    def __init__(self, db: LocalDB, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    # ------------------------------------------------------------ pull
    def apply_changes(self, changes: list[dict], reset: bool = False, cursor: tuple[str, str] | None = None
                      ) -> set[str]:
        """Apply one pull page (and store its cursor) in one transaction; return the ids of changed tasks."""
        touched: set[str] = set()
        with self.db.transaction() as c:
            if cursor is not None:
                self.db.set_meta(*cursor)
            if reset:
                c.execute("UPDATE tasks SET server = NULL")
                touched |= {r["id"] for r in self.db.query("SELECT id FROM tasks")}
                for table in ("products", "barcodes", "reason_codes", "store_users"):
                    c.execute(f"DELETE FROM {table}")
            for ch in changes:
                entity, op, key, data = ch.get("entity"), ch.get("op"), str(ch.get("id")), ch.get("data") or {}
                if entity == "task":
                    self._task(c, key, None if op == "delete" else data)
                    touched.add(key)
                elif entity == "product":
                    c.execute("DELETE FROM barcodes WHERE sku = ?", (key,))
                    if op == "delete":
                        c.execute("DELETE FROM products WHERE sku = ?", (key,))
                        continue
                    c.execute("INSERT OR REPLACE INTO products(sku, name, data) VALUES (?,?,?)",
                              (data.get("sku", key), data.get("name"), dumps(data)))
                    c.executemany("INSERT OR REPLACE INTO barcodes(barcode, sku) VALUES (?, ?)",
                                  [(b, data.get("sku", key)) for b in data.get("barcodes") or []])
                elif entity == "reason_code":
                    if op == "delete":
                        c.execute("DELETE FROM reason_codes WHERE code = ?", (key,))
                    else:
                        c.execute("INSERT OR REPLACE INTO reason_codes(code, label, needs_note, position) "
                                  "VALUES (?,?,?,?)", (data.get("code", key), data.get("label") or key,
                                                       1 if data.get("needs_note") else 0, data.get("position")))
                elif entity == "user":
                    if op == "delete":
                        c.execute("DELETE FROM store_users WHERE username = ?", (key,))
                    else:
                        c.execute("INSERT OR REPLACE INTO store_users(username, role, data) VALUES (?,?,?)",
                                  (data.get("username", key), data.get("role"), dumps(data)))
            for t in touched:
                self.outbox.rebase(t)
        return touched

    def _task(self, c: Any, task_id: str, data: dict | None) -> None:
        row = self.db.one("SELECT view FROM tasks WHERE id = ?", (task_id,))
        if data is None:
            if row is not None:
                c.execute("UPDATE tasks SET server = NULL WHERE id = ?", (task_id,))
            return
        data = {**data, "id": task_id}
        values = (dumps(data), dumps(data), data.get("step") or "pick", data.get("order_number") or data.get(
            "order_id"), data.get("promise_by"), data.get("assignee"), data.get("delivery_method"), task_id)
        if row is None:
            c.execute("INSERT INTO tasks(server, view, step, order_number, promise_by, assignee, delivery_method, id)"
                      " VALUES (?,?,?,?,?,?,?,?)", values)
        else:
            c.execute("UPDATE tasks SET server = ?, view = ?, step = ?, order_number = ?, promise_by = ?, "
                      "assignee = ?, delivery_method = ? WHERE id = ?", values)

    # ------------------------------------------------------------ reads
    def task(self, task_id: str) -> dict | None:
        row = self.db.one("SELECT view, removed FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            return None
        view = loads(row["view"])
        view["removed"] = bool(row["removed"])
        return view

    def open_tasks(self) -> list[dict]:
        """Tasks still in this store's queue, most urgent first (no promise time last)."""
        rows = self.db.query("SELECT view FROM tasks WHERE removed = 0 AND step != 'done' "
                             "ORDER BY promise_by IS NULL, promise_by, order_number")
        tasks = [loads(r["view"]) for r in rows]
        # a manager's nudge (priority) comes first, then the promise (stable sort keeps the promise order)
        return sorted(tasks, key=lambda t: -int(t.get("priority") or 0))

    def attention(self) -> list[dict]:
        """Orders that need the associate to read something: rejected actions, or withdrawn with work waiting."""
        ids = {r["task_id"] for r in self.db.query(
            "SELECT DISTINCT task_id FROM outbox WHERE task_id IS NOT NULL AND state = 'rejected' AND dismissed = 0")}
        ids |= {r["id"] for r in self.db.query(
            "SELECT t.id FROM tasks t WHERE t.server IS NULL AND EXISTS (SELECT 1 FROM outbox o "
            "WHERE o.task_id = t.id AND o.state = 'pending')")}
        out = []
        for t in sorted(ids):
            task = self.task(t)
            if task is not None:
                task["conflicts"] = self.outbox.conflicts(t)
                out.append(task)
        return out

    def find_task(self, text: str) -> dict | None:
        """By order number (exact, then prefix/suffix) among open tasks, or by task id."""
        text = text.strip()
        if not text:
            return None
        row = self.db.one("SELECT id FROM tasks WHERE (order_number = ? COLLATE NOCASE OR id = ?) ORDER BY removed",
                          (text, text))
        if row is None:
            row = self.db.one("SELECT id FROM tasks WHERE removed = 0 AND (order_number LIKE ? OR order_number LIKE ?)"
                              " ORDER BY promise_by", (f"%{text}", f"{text}%"))
        return self.task(row["id"]) if row else None

    def product_by_barcode(self, barcode: str) -> dict | None:
        row = self.db.one("SELECT p.data FROM barcodes b JOIN products p ON p.sku = b.sku WHERE b.barcode = ?",
                          (barcode.strip(),))
        if row is None:
            row = self.db.one("SELECT data FROM products WHERE sku = ? COLLATE NOCASE", (barcode.strip(),))
        return loads(row["data"]) if row else None

    def product(self, sku: str) -> dict | None:
        row = self.db.one("SELECT data FROM products WHERE sku = ?", (sku,))
        return loads(row["data"]) if row else None

    def reason_codes(self) -> list[dict]:
        rows = self.db.query("SELECT code, label, needs_note FROM reason_codes ORDER BY position IS NULL, position, "
                             "rowid")
        if not rows:
            return [{"code": c, "label": label, "needs_note": n} for c, label, n in DEFAULT_REASONS]
        return [{"code": r["code"], "label": r["label"], "needs_note": bool(r["needs_note"])} for r in rows]

    def associates(self) -> list[dict]:
        return [dict(r) for r in self.db.query("SELECT username, role FROM store_users ORDER BY username")]

    def counts_by_step(self) -> dict[str, int]:
        return {r["step"]: r["n"] for r in self.db.query(
            "SELECT step, COUNT(*) n FROM tasks WHERE removed = 0 AND step != 'done' GROUP BY step")}

    def reset_store(self) -> None:
        """Another store's user signed in on this tablet: drop the old store's copy (never the outbox)."""
        with self.db.transaction() as c:
            for table in ("tasks", "products", "barcodes", "reason_codes", "store_users"):
                c.execute(f"DELETE FROM {table} WHERE 1" if table != "tasks" else
                          "DELETE FROM tasks WHERE id NOT IN (SELECT task_id FROM outbox WHERE task_id IS NOT NULL)")
            c.execute("DELETE FROM meta WHERE key LIKE 'cursor%'")
