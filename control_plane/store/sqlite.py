"""SQLite backend: one file, one connection, for single-host installs and tests.

Timestamps are INTEGER epoch milliseconds (indexable, exact, same precision as MongoDB);
JSON values are TEXT. The connection is shared by all threads and guarded by one lock,
which also makes every read-modify-write below atomic within the process; the conditional
UPDATEs keep them atomic against other processes opening the same file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from control_plane.store import records
from control_plane.store.base import (
    NewTask,
    PluginRecord,
    Store,
    StoreError,
    TaskFilter,
    ThroughputBucket,
    WorkerRecord,
)
from task_contract.api import Heartbeat, TaskOutcome, TaskStatus, TaskView
from task_contract.manifest import PluginManifest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plugins (
    id TEXT PRIMARY KEY,
    manifest TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    plugin_id TEXT NOT NULL,
    plugin_version TEXT NOT NULL,
    queue TEXT NOT NULL,
    parameters TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    worker_id TEXT,
    result TEXT,
    error TEXT,
    failure_kind TEXT,
    exit_code INTEGER,
    stderr TEXT,
    duration_seconds REAL,
    batch_id TEXT
);
-- Equality filters carry `id` as a trailing column: list_tasks / iter_tasks / queued_tasks
-- filter on them and order by id, and the index then yields rows already in id order, so
-- "newest 50 of 100,000 queued" reads 50 index entries instead of sorting 100,000 rows.
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, id);
CREATE INDEX IF NOT EXISTS tasks_plugin_id ON tasks (plugin_id, id);
CREATE INDEX IF NOT EXISTS tasks_type ON tasks (type, id);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (queue, id);
CREATE INDEX IF NOT EXISTS tasks_worker_id ON tasks (worker_id, id);
CREATE INDEX IF NOT EXISTS tasks_batch_id ON tasks (batch_id, id);
CREATE INDEX IF NOT EXISTS tasks_queue_status ON tasks (queue, status, id);
CREATE INDEX IF NOT EXISTS tasks_plugin_status ON tasks (plugin_id, status, id);
CREATE INDEX IF NOT EXISTS tasks_batch_status ON tasks (batch_id, status, id);
CREATE INDEX IF NOT EXISTS tasks_status_finished ON tasks (status, finished_at);
CREATE INDEX IF NOT EXISTS tasks_worker_status ON tasks (worker_id, status);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credential_hash TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    platform TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    cpus REAL,
    queues TEXT,
    state TEXT NOT NULL,
    session_id TEXT NOT NULL,
    last_heartbeat INTEGER,
    running_tasks TEXT NOT NULL,
    load REAL,
    revoked INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS workers_registered_at ON workers (registered_at, id);
"""

# Counts per status, kept by insert_tasks and by triggers on status changes, so the
# unfiltered counts the dashboard and every task page ask for read four rows instead of
# scanning an index of a million entries.
_COUNTS_SCHEMA = """
CREATE TABLE task_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO task_counts (status, n) SELECT status, COUNT(*) FROM tasks GROUP BY status;
CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON tasks
WHEN OLD.status <> NEW.status BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
    INSERT INTO task_counts (status, n) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
END;
"""

_WORKER_BOOL_FIELDS = ("revoked",)


# --- value encoding --------------------------------------------------------------------


# One encoder for all calls: json.dumps with non-default options builds a new encoder on
# every call, a measurable share of the cost of a 5,000-task insert.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dump_json(value: Any) -> str:
    return _JSON.encode(value)


def _encode(
    fields: Mapping[str, Any], datetime_fields: Sequence[str], json_fields: Sequence[str]
) -> dict[str, Any]:
    """Model field values -> column values."""
    encoded = dict(fields)
    for name in datetime_fields:
        if encoded.get(name) is not None:
            encoded[name] = records.to_millis(encoded[name])
    for name in json_fields:
        if name in encoded:
            encoded[name] = _dump_json(encoded[name])
    return encoded


def _decode(
    row: sqlite3.Row, datetime_fields: Sequence[str], json_fields: Sequence[str]
) -> dict[str, Any]:
    """Column values -> model field values."""
    decoded = dict(zip(row.keys(), tuple(row), strict=True))
    for name in datetime_fields:
        if decoded.get(name) is not None:
            decoded[name] = records.from_millis(decoded[name])
    for name in json_fields:
        if decoded.get(name) is not None:
            decoded[name] = json.loads(decoded[name])
    return decoded


def _task_row(fields: Mapping[str, Any]) -> dict[str, Any]:
    return _encode(fields, records.TASK_DATETIME_FIELDS, records.TASK_JSON_FIELDS)


def _task_view(row: sqlite3.Row) -> TaskView:
    return records.task_view(_decode(row, records.TASK_DATETIME_FIELDS, records.TASK_JSON_FIELDS))


def _worker_row(fields: Mapping[str, Any]) -> dict[str, Any]:
    row = _encode(fields, records.WORKER_DATETIME_FIELDS, records.WORKER_JSON_FIELDS)
    for name in _WORKER_BOOL_FIELDS:
        if name in row:
            row[name] = int(row[name])
    return row


def _worker_record(row: sqlite3.Row) -> WorkerRecord:
    fields = _decode(row, records.WORKER_DATETIME_FIELDS, records.WORKER_JSON_FIELDS)
    for name in _WORKER_BOOL_FIELDS:
        fields[name] = bool(fields[name])
    return records.worker_record(fields)


def _plugin_record(row: sqlite3.Row) -> PluginRecord:
    return PluginRecord(
        manifest=PluginManifest.model_validate_json(row["manifest"]),
        created_at=records.from_millis(row["created_at"]),
        updated_at=records.from_millis(row["updated_at"]),
    )


def _where(conditions: Mapping[str, Any], extra: Sequence[str] = ()) -> str:
    """`WHERE a = :a AND ...` for named parameters; column names come from our own code."""
    clauses = [f"{name} = :{name}" for name in conditions] + list(extra)
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _assignments(fields: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} = :{name}" for name in fields)


_IN_CHUNK = 500
"""Ids per `IN (...)` query: well under SQLite's bound-parameter limit."""


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit, so single statements commit on their own
            # and multi-statement writes use explicit BEGIN IMMEDIATE (see _transaction).
            self._conn = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._ensure_counts()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc

    def _ensure_counts(self) -> None:
        # Created (and filled from the tasks already stored) in one write transaction, so a
        # database from before the counters, or a second process opening it, stays exact.
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task_counts'"
            ).fetchone()
            if not exists:
                for statement in _split_statements(_COUNTS_SCHEMA):
                    conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- plumbing ----------------------------------------------------------------------
    @contextmanager
    def _locked(self, operation: str) -> Iterator[sqlite3.Connection]:
        """Exclusive use of the connection; sqlite errors become StoreError."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite {operation} failed: {exc}") from exc

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[sqlite3.Connection]:
        """`_locked` plus one write transaction, rolled back if the body raises."""
        with self._locked(operation) as conn:
            # IMMEDIATE takes the write lock up front, so a read followed by a write in
            # the body cannot be interleaved with another process's write.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        with self._locked("close") as conn:
            conn.close()

    # --- meta --------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._locked("get_meta") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta_if_absent(self, key: str, value: str) -> str:
        with self._transaction("set_meta_if_absent") as conn:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row["value"])

    # --- plugins -----------------------------------------------------------------------
    def upsert_plugin(self, manifest: PluginManifest, now: datetime) -> tuple[PluginRecord, bool]:
        now_ms = records.to_millis(now)
        with self._transaction("upsert_plugin") as conn:
            existing = conn.execute(
                "SELECT created_at FROM plugins WHERE id = ?", (manifest.id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO plugins (id, manifest, created_at, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE"
                " SET manifest = excluded.manifest, updated_at = excluded.updated_at",
                (manifest.id, manifest.model_dump_json(), now_ms, now_ms),
            )
        created_ms = now_ms if existing is None else existing["created_at"]
        record = PluginRecord(
            manifest=manifest,
            created_at=records.from_millis(created_ms),
            updated_at=records.from_millis(now_ms),
        )
        return record, existing is None

    def get_plugin(self, plugin_id: str) -> PluginRecord | None:
        with self._locked("get_plugin") as conn:
            row = conn.execute("SELECT * FROM plugins WHERE id = ?", (plugin_id,)).fetchone()
        return None if row is None else _plugin_record(row)

    def list_plugins(self) -> list[PluginRecord]:
        with self._locked("list_plugins") as conn:
            rows = conn.execute("SELECT * FROM plugins ORDER BY id").fetchall()
        return [_plugin_record(row) for row in rows]

    # --- tasks -------------------------------------------------------------------------
    def insert_tasks(self, tasks: Sequence[NewTask]) -> None:
        if not tasks:
            return
        columns = ", ".join(records.TASK_FIELDS)
        placeholders = ", ".join(f":{name}" for name in records.TASK_FIELDS)
        rows = [_task_row(records.new_task_fields(task)) for task in tasks]
        # Encode before taking the lock; one transaction so 5,000 rows cost one fsync.
        with self._transaction("insert_tasks") as conn:
            conn.executemany(f"INSERT INTO tasks ({columns}) VALUES ({placeholders})", rows)
            # One counter update per bulk write; a per-row trigger doubled the insert cost.
            conn.execute(
                "INSERT INTO task_counts (status, n) VALUES ('queued', ?)"
                " ON CONFLICT (status) DO UPDATE SET n = n + excluded.n",
                (len(rows),),
            )

    def get_task(self, task_id: str) -> TaskView | None:
        with self._locked("get_task") as conn:
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else _task_view(row)

    def list_tasks(self, flt: TaskFilter, offset: int, limit: int) -> list[TaskView]:
        if limit <= 0:
            return []  # SQLite reads a negative LIMIT as "no limit"
        conditions = records.filter_fields(flt)
        params = {**conditions, "offset_": max(offset, 0), "limit_": limit}
        with self._locked("list_tasks") as conn:
            rows = conn.execute(
                f"SELECT * FROM tasks {_where(conditions)}"
                " ORDER BY id DESC LIMIT :limit_ OFFSET :offset_",
                params,
            ).fetchall()
        return [_task_view(row) for row in rows]

    def count_tasks(self, flt: TaskFilter) -> int:
        conditions = records.filter_fields(flt)
        if set(conditions) <= {"status"}:
            counts = self.count_by_status(TaskFilter())
            return counts[flt.status] if flt.status is not None else sum(counts.values())
        with self._locked("count_tasks") as conn:
            row = conn.execute(
                f"SELECT COUNT(*) AS n FROM tasks {_where(conditions)}", conditions
            ).fetchone()
        return int(row["n"])

    def count_by_status(self, flt: TaskFilter) -> dict[TaskStatus, int]:
        conditions = records.filter_fields(flt, with_status=False)
        with self._locked("count_by_status") as conn:
            if conditions:
                rows = conn.execute(
                    f"SELECT status, COUNT(*) AS n FROM tasks {_where(conditions)} GROUP BY status",
                    conditions,
                ).fetchall()
            else:
                rows = conn.execute("SELECT status, n FROM task_counts").fetchall()
        counts = records.empty_status_counts()
        for row in rows:
            counts[TaskStatus(row["status"])] = int(row["n"])
        return counts

    def iter_tasks(self, flt: TaskFilter, chunk_size: int = 1000) -> Iterator[TaskView]:
        conditions = records.filter_fields(flt)
        limit = max(chunk_size, 1)
        after: str | None = None
        while True:
            extra = [] if after is None else ["id > :after_"]
            params = {**conditions, "after_": after, "limit_": limit}
            # The lock is held per chunk only, so callers may use the store while iterating.
            with self._locked("iter_tasks") as conn:
                rows = conn.execute(
                    f"SELECT * FROM tasks {_where(conditions, extra)} ORDER BY id LIMIT :limit_",
                    params,
                ).fetchall()
            yield from (_task_view(row) for row in rows)
            if len(rows) < limit:
                return
            after = rows[-1]["id"]

    def start_task(self, task_id: str, worker_id: str, now: datetime) -> TaskView | None:
        with self._locked("start_task") as conn:
            conn.execute(
                "UPDATE tasks SET status = 'running', attempts = attempts + 1,"
                " worker_id = ?, started_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (worker_id, records.to_millis(now), task_id),
            )
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else _task_view(row)

    def finish_task(
        self, task_id: str, worker_id: str, outcome: TaskOutcome, now: datetime
    ) -> bool:
        fields = _task_row(records.outcome_fields(worker_id, outcome, now))
        # The status condition is what makes the first result win, even across processes.
        with self._locked("finish_task") as conn:
            cursor = conn.execute(
                f"UPDATE tasks SET {_assignments(fields)}"
                " WHERE id = :id_ AND status IN ('queued', 'running')",
                {**fields, "id_": task_id},
            )
        return cursor.rowcount == 1

    def start_tasks(self, task_ids: Sequence[str], worker_id: str, now: datetime) -> list[TaskView]:
        ids = list(dict.fromkeys(task_ids))
        with self._transaction("start_tasks") as conn:
            conn.executemany(
                "UPDATE tasks SET status = 'running', attempts = attempts + 1,"
                " worker_id = ?, started_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                [(worker_id, records.to_millis(now), task_id) for task_id in ids],
            )
            found: dict[str, TaskView] = {}
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"SELECT * FROM tasks WHERE id IN ({marks})", chunk):
                    found[row["id"]] = _task_view(row)
        return [found[task_id] for task_id in ids if task_id in found]

    def finish_tasks(
        self, worker_id: str, outcomes: Mapping[str, TaskOutcome], now: datetime
    ) -> list[str]:
        recorded: list[str] = []
        with self._transaction("finish_tasks") as conn:
            for task_id, outcome in outcomes.items():
                fields = _task_row(records.outcome_fields(worker_id, outcome, now))
                cursor = conn.execute(
                    f"UPDATE tasks SET {_assignments(fields)}"
                    " WHERE id = :id_ AND status IN ('queued', 'running') AND worker_id = :owner_",
                    {**fields, "id_": task_id, "owner_": worker_id},
                )
                if cursor.rowcount == 1:
                    recorded.append(task_id)
        return recorded

    def requeue_running(
        self, worker_id: str, keep: Sequence[str] = (), started_before: datetime | None = None
    ) -> list[tuple[str, str]]:
        extra = ["status = 'running'"]
        params: dict[str, Any] = {"worker_id": worker_id}
        if started_before is not None:
            extra.append("started_at < :started_before")
            params["started_before"] = records.to_millis(started_before)
        kept = set(keep)
        with self._transaction("requeue_running") as conn:
            # No ORDER BY: it would steer the planner to (worker_id, id) and past every
            # finished task of the worker, instead of straight to (worker_id, status).
            rows = conn.execute(
                f"SELECT id, queue FROM tasks {_where({'worker_id': worker_id}, extra)}", params
            ).fetchall()
            requeued = sorted((row["id"], row["queue"]) for row in rows if row["id"] not in kept)
            conn.executemany(
                "UPDATE tasks SET status = 'queued' WHERE id = ? AND status = 'running'",
                [(task_id,) for task_id, _ in requeued],
            )
        return requeued

    def queued_tasks(self, queue: str, created_before: datetime, limit: int) -> list[str]:
        if limit <= 0:
            return []
        with self._locked("queued_tasks") as conn:
            rows = conn.execute(
                "SELECT id FROM tasks WHERE queue = ? AND status = 'queued' AND created_at < ?"
                " ORDER BY id LIMIT ?",
                (queue, records.to_millis(created_before), limit),
            ).fetchall()
        return [str(row["id"]) for row in rows]

    def throughput(self, since: datetime, bucket_seconds: int) -> list[ThroughputBucket]:
        bucket_ms = max(bucket_seconds, 1) * 1000
        # finished_at is a non-negative integer, so integer division is floor().
        with self._locked("throughput") as conn:
            rows = conn.execute(
                "SELECT finished_at / :bucket AS bucket,"
                " SUM(status = 'succeeded') AS succeeded, SUM(status = 'failed') AS failed"
                " FROM tasks WHERE status IN ('succeeded', 'failed') AND finished_at >= :since"
                " GROUP BY bucket ORDER BY bucket",
                {"bucket": bucket_ms, "since": records.to_millis(since)},
            ).fetchall()
        return [
            ThroughputBucket(
                start=records.from_millis(row["bucket"] * bucket_ms),
                succeeded=int(row["succeeded"]),
                failed=int(row["failed"]),
            )
            for row in rows
        ]

    # --- workers -----------------------------------------------------------------------
    def create_worker(self, worker: WorkerRecord) -> None:
        row = _worker_row(records.worker_fields(worker))
        columns = ", ".join(row)
        placeholders = ", ".join(f":{name}" for name in row)
        with self._locked("create_worker") as conn:
            conn.execute(f"INSERT INTO workers ({columns}) VALUES ({placeholders})", row)

    def get_worker(self, worker_id: str) -> WorkerRecord | None:
        with self._locked("get_worker") as conn:
            row = conn.execute("SELECT * FROM workers WHERE id = ?", (worker_id,)).fetchone()
        return None if row is None else _worker_record(row)

    def list_workers(self) -> list[WorkerRecord]:
        with self._locked("list_workers") as conn:
            rows = conn.execute(
                "SELECT * FROM workers ORDER BY registered_at DESC, id DESC"
            ).fetchall()
        return [_worker_record(row) for row in rows]

    def record_heartbeat(self, worker_id: str, now: datetime, beat: Heartbeat) -> None:
        fields = _worker_row(records.heartbeat_fields(now, beat))
        with self._locked("record_heartbeat") as conn:
            conn.execute(
                f"UPDATE workers SET {_assignments(fields)} WHERE id = :id_",
                {**fields, "id_": worker_id},
            )


def _split_statements(script: str) -> list[str]:
    """Statements of a script whose triggers contain `;` (sqlite3.complete_statement knows)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]
