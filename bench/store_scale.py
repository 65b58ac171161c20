"""The SQLite store at 100,000 and 1,000,000 tasks: the dashboard's queries, their plans, and
the control plane's memory serving them.

What it measures, without HTTP first: a SqliteStore in a temp dir is filled with realistic
tasks to N/10 (100,000 by default), every query the dashboard and the API make is timed, then
the fill continues to N (1,000,000) and the same queries, with the same arguments (same
plugin, worker, upload, task ids), are timed again. The table shows both and the growth
ratio N / (N/10): about 1x (flat) or a little more (logarithmic) means the query seeks an
index; about 10x means it reads every row or index entry (a full scan). Each query's SQL,
captured from the store's own connection, goes through EXPLAIN QUERY PLAN; the table says
whether SQLite SEARCHes an index or SCANs (a SCAN that a LIMIT stops early stays flat).

The rows are what a real install accumulates:
  - uploads of 10,000 items (one batch_id each), inserted with `insert_tasks` in chunks of
    5,000, one every 30 simulated minutes; 4 plugins (60 / 20 / 12 / 8 % of the uploads),
    each with its own queue and type; items are real disposable-mail domains (cycled with a
    numeric prefix), ids carry the simulated creation time as control_plane.ids does;
  - the work runs oldest first behind a growing backlog: the oldest 65 % of the tasks are
    finished (1 in 13 failed: an item error for the batch plugin, a timeout or non-zero exit
    with stderr for the others: 60 % succeeded, 5 % failed overall), the next 5 % are running,
    the newest 30 % queued; succeeded tasks carry the example plugin's real result (computed
    with its code, ~500 bytes of JSON), 4 agents share the work;
  - every status change is made with the store's own `start_task` / `finish_task` (simulated
    clock), grouped 5,000 to a transaction (a BEGIN/COMMIT around the calls on the store's
    connection) so the fill takes minutes, not hours; tasks queued or running at N/10 move on
    to running/finished during the fill to N, as they would.

Queries (the `GET /api/tasks` page runs list_tasks + count_tasks with the same filter; the
dashboard's counts are count_by_status; /api/stats runs count_by_status + throughput):
count_by_status (no filter, by plugin, by upload), count_tasks (no filter and each filter,
and status + plugin), list_tasks first page and a deep page (offset N/2: 500,000 at 1M)
with and without filters, get_task, iter_tasks of a 10,000-task slice (one upload; the
first 10,000 succeeded), throughput over the last hour, the recovery loop's queued_tasks,
start_task + finish_task (a single task's start and result calls), start_tasks +
finish_tasks of 500 (a batch's) and insert_tasks of 5,000 (a submission chunk).

Then it starts a control plane (redis-server on a free port, DTS_SQLITE_PATH at the 1M-task
file) and reports its RSS idle and its peak (VmHWM) after `GET /api/tasks/counts`,
`GET /api/tasks?limit=50` and `GET /api/stats`, against a control plane on an empty database.

Run from the repo root (the default 1,000,000 tasks take a while and ~1.5 GB in /tmp):

    .venv/bin/python -m bench.store_scale
    .venv/bin/python -m bench.store_scale --tasks 20000
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/store_scale.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.table import Table

from bench.common import (
    MANIFEST,
    PRODUCTION_TIMERS,
    console,
    domain_items,
    fmt,
    peak_rss_mib,
    ratio,
    rss_mib,
)
from control_plane import defaults
from control_plane.services.recovery import REPUBLISH_LIMIT
from control_plane.store.base import NewTask, TaskFilter, WorkerRecord
from control_plane.store.sqlite import SqliteStore, _task_view
from task_contract.api import FailureKind, Heartbeat, TaskOutcome, TaskStatus
from task_contract.manifest import PluginManifest
from tests.support.processes import REPO, ControlPlane, RedisServer

sys.path.insert(0, str(REPO / "plugins" / "example_plugin"))
try:
    from task import result_for  # the example plugin's own code: real results
finally:
    sys.path.pop(0)

INSERT_CHUNK = 5_000
UPLOAD_ITEMS = 10_000
UPLOAD_EVERY = timedelta(minutes=30)
FINISHED_SHARE = 0.65
RUNNING_SHARE = 0.05
FAILED_ONE_IN = 13  # of the finished: 5 % of all tasks
PAGE = 50
SLICE = 10_000
SEED = 20240611


# ---------------------------------------------------------------- the data


@dataclass(frozen=True)
class Plugin:
    manifest: PluginManifest
    type: str
    share: float


def plugins() -> list[Plugin]:
    def variant(plugin_id: str, queue: str, batch: bool) -> PluginManifest:
        raw = {**MANIFEST, "id": plugin_id, "queue": queue, "name": plugin_id.title()}
        raw["docker_image"] = f"{plugin_id}:{raw['version']}"
        if not batch:
            raw.pop("batch", None)
        return PluginManifest.model_validate(raw)

    return [
        Plugin(PluginManifest.model_validate(MANIFEST), "domain", 0.60),
        Plugin(variant("mx-check", "mx_queue", False), "domain", 0.20),
        Plugin(variant("url-screenshot", "screenshot_queue", False), "url", 0.12),
        Plugin(variant("mailbox-verify", "mailbox_queue", False), "email", 0.08),
    ]


WORKERS = [f"w{index:016x}" for index in (0x3A91C2, 0x7F00B1, 0xC4D2E9, 0x19E5A7)]


class Ids:
    """control_plane.ids.new_task_id's format on a simulated clock."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.last_ms = 0
        self.seq = 0

    def task(self, when: datetime) -> str:
        ms = max(int(when.timestamp() * 1000), self.last_ms)
        if ms == self.last_ms:
            self.seq += 1
        else:
            self.last_ms, self.seq = ms, 0
        return f"{ms:012x}{self.seq:08x}{self.rng.getrandbits(48):012x}"

    def batch(self, when: datetime) -> str:
        return "b" + self.task(when)[:20] + f"{self.rng.getrandbits(16):04x}"


@dataclass
class Fill:
    """Fills the store upload by upload and moves tasks through their statuses by rank
    (position in id order), so the database at any size looks like a live install."""

    store: SqliteStore
    total: int
    upload_items: int
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    ids: list[str] = field(default_factory=list)
    plugin_of: list[int] = field(default_factory=list)
    uploads: list[tuple[str, int, int]] = field(default_factory=list)
    """(batch_id, plugin index, first rank) per upload."""
    finished_upto: int = 0
    insert_seconds: float = 0.0
    running_upto: int = 0
    item_source: Iterator[dict[str, str]] = field(default_factory=lambda: domain_items(10**9))
    domains: list[str] = field(default_factory=list)
    """The domain of each rank's item (what its result is computed from)."""

    def __post_init__(self) -> None:
        self.plugins = plugins()
        self.id_maker = Ids(self.rng)
        self.rate = self.upload_items / UPLOAD_EVERY.total_seconds()  # tasks created per s
        uploads = -(-self.total // self.upload_items)
        self.t0 = datetime.now(UTC) - UPLOAD_EVERY * uploads
        now = datetime.now(UTC)
        for plugin in self.plugins:
            self.store.upsert_plugin(plugin.manifest, self.t0)
        for index, worker_id in enumerate(WORKERS):
            self.store.create_worker(
                WorkerRecord(
                    id=worker_id,
                    name=f"agent-{index + 1}",
                    credential_hash="sha256$" + f"{self.rng.getrandbits(256):064x}",
                    registered_at=self.t0,
                    hostname=f"worker-{index + 1}.lan",
                    platform="Linux-6.1-x86_64",
                    concurrency=4,
                    cpus=4.0,
                    state="running",
                    session_id=f"{self.rng.getrandbits(64):016x}",
                    last_heartbeat=now,
                )
            )

    # --- clock -------------------------------------------------------------------------
    def sim_now(self, count: int) -> datetime:
        """The simulated time when the store holds `count` tasks."""
        return self.t0 + timedelta(seconds=count / self.rate)

    def finished_at(self, rank: int) -> datetime:
        """Oldest first at FINISHED_SHARE of the creation rate: rank FINISHED_SHARE * n
        finishes at sim_now(n)."""
        return self.t0 + timedelta(seconds=rank / (FINISHED_SHARE * self.rate))

    # --- growing ------------------------------------------------------------------------
    def grow_to(self, count: int, progress: Callable[[str], None]) -> None:
        started = time.perf_counter()
        while len(self.ids) < count:
            self._upload(min(self.upload_items, count - len(self.ids)))
            if len(self.uploads) % 10 == 0:
                progress(f"  inserted {len(self.ids):,} ({time.perf_counter() - started:.0f} s)")
        self._advance(count, progress)

    def _upload(self, size: int) -> None:
        index = self.rng.choices(range(len(self.plugins)), [p.share for p in self.plugins])[0]
        plugin = self.plugins[index]
        start = self.t0 + UPLOAD_EVERY * len(self.uploads)
        batch_id = self.id_maker.batch(start)
        self.uploads.append((batch_id, index, len(self.ids)))
        parameters = plugin.manifest.resolve_parameters({})
        for offset in range(0, size, INSERT_CHUNK):
            tasks = []
            for position in range(offset, min(offset + INSERT_CHUNK, size)):
                created = start + timedelta(microseconds=33 * position)  # ~30,000 items/s
                tasks.append(
                    NewTask(
                        id=self.id_maker.task(created),
                        type=plugin.type,
                        data=_data(plugin.type, next(self.item_source)["domain"]),
                        plugin_id=plugin.manifest.id,
                        plugin_version=plugin.manifest.version,
                        queue=plugin.manifest.queue,
                        parameters=parameters,
                        created_at=created,
                        batch_id=batch_id,
                    )
                )
            began = time.perf_counter()
            self.store.insert_tasks(tasks)
            self.insert_seconds += time.perf_counter() - began
            self.ids.extend(task.id for task in tasks)
            self.domains.extend(_domain(task.data) for task in tasks)
            self.plugin_of.extend([index] * len(tasks))

    def _advance(self, count: int, progress: Callable[[str], None]) -> None:
        """Statuses for a store of `count` tasks: oldest FINISHED_SHARE finished, the next
        RUNNING_SHARE running, the rest queued."""
        finish_to = int(count * FINISHED_SHARE)
        run_to = int(count * (FINISHED_SHARE + RUNNING_SHARE))
        now = self.sim_now(count)
        started = time.perf_counter()
        done = 0
        for low in range(self.finished_upto, finish_to, INSERT_CHUNK):
            with _transaction(self.store):
                for rank in range(low, min(low + INSERT_CHUNK, finish_to)):
                    self._finish(rank, already_running=rank < self.running_upto)
            done += min(low + INSERT_CHUNK, finish_to) - low
            if done % 100_000 < INSERT_CHUNK:
                progress(f"  finished {done:,} ({time.perf_counter() - started:.0f} s)")
        for low in range(max(self.running_upto, finish_to), run_to, INSERT_CHUNK):
            with _transaction(self.store):
                for rank in range(low, min(low + INSERT_CHUNK, run_to)):
                    when = now - timedelta(seconds=self.rng.uniform(1, 900))
                    self.store.start_task(self.ids[rank], self._worker(rank), when)
        self.finished_upto = finish_to
        self.running_upto = max(self.running_upto, run_to)

    def _worker(self, rank: int) -> str:
        return WORKERS[(rank // 500) % len(WORKERS)]

    def _finish(self, rank: int, already_running: bool) -> None:
        task_id = self.ids[rank]
        plugin = self.plugins[self.plugin_of[rank]]
        worker = self._worker(rank)
        finished = self.finished_at(rank)
        batch = plugin.manifest.batch is not None
        duration = (
            round(self.rng.uniform(0.0008, 0.0016), 3) if batch else self.rng.uniform(0.4, 3.0)
        )
        if not already_running:
            started = finished - timedelta(seconds=duration + self.rng.uniform(0.3, 2.0))
            self.store.start_task(task_id, worker, started)
        outcome = self._outcome(self.domains[rank], plugin, duration)
        self.store.finish_task(task_id, worker, outcome, finished)

    def _outcome(self, domain: str, plugin: Plugin, duration: float) -> TaskOutcome:
        if self.rng.randrange(FAILED_ONE_IN):
            return TaskOutcome(
                succeeded=True,
                result=result_for({"domain": domain}, "all"),
                exit_code=0,
                duration_seconds=duration,
                attempt=1,
            )
        if plugin.manifest.batch is not None:
            return TaskOutcome(
                succeeded=False,
                failure_kind=FailureKind.item_error,
                error="plugin reported an error for this item: not a domain name: label "
                "'-bad-' starts or ends with a hyphen",
                exit_code=0,
                duration_seconds=duration,
                attempt=1,
            )
        if self.rng.random() < 0.5:
            return TaskOutcome(
                succeeded=False,
                failure_kind=FailureKind.timeout,
                error="container exceeded its 60 s timeout and was killed",
                exit_code=137,
                stderr="fetching https://example.invalid/ ...\n" * 6,
                duration_seconds=60.0,
                attempt=1,
            )
        return TaskOutcome(
            succeeded=False,
            failure_kind=FailureKind.exit_nonzero,
            error="plugin exited with code 1: ConnectionRefusedError: [Errno 111]",
            exit_code=1,
            stderr=_TRACEBACK,
            duration_seconds=duration,
            attempt=1,
        )


_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/main.py", line 41, in <module>\n'
    "    sys.exit(main())\n"
    '  File "/app/main.py", line 33, in main\n'
    "    answer = resolver.resolve(domain, 'MX')\n"
    '  File "/usr/local/lib/python3.12/socket.py", line 852, in create_connection\n'
    "    raise exceptions[0]\n"
    "ConnectionRefusedError: [Errno 111] Connection refused\n"
)


def _data(task_type: str, domain: str) -> dict[str, str]:
    if task_type == "url":
        return {"url": f"https://www.{domain}/", "viewport": "1280x800"}
    if task_type == "email":
        return {"email": f"contact@{domain}"}
    return {"domain": domain}


def _domain(data: Any) -> str:
    if "domain" in data:
        return str(data["domain"])
    if "url" in data:
        return str(data["url"]).split("//", 1)[1].split("/", 1)[0].removeprefix("www.")
    return str(data["email"]).split("@", 1)[1]


@contextmanager
def _transaction(store: SqliteStore) -> Iterator[None]:
    """Group many store calls in one write transaction (the bench is the only user of the
    connection, so the store's own lock is never contended)."""
    conn = store._conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# ---------------------------------------------------------------- the queries


@dataclass
class Context:
    count: int
    deep: int
    main_plugin: str
    small_plugin: str
    type: str
    queue: str
    worker: str
    batch: str
    task_ids: list[str]
    since: datetime
    created_before: datetime


@dataclass
class Query:
    group: str
    name: str
    run: Callable[[SqliteStore, Context], int]
    """Returns how many rows (or the count) it produced."""


def _filters(ctx: Context) -> list[tuple[str, TaskFilter]]:
    return [
        ("status=queued", TaskFilter(status=TaskStatus.queued)),
        ("status=failed", TaskFilter(status=TaskStatus.failed)),
        (f"plugin_id={ctx.main_plugin}", TaskFilter(plugin_id=ctx.main_plugin)),
        (f"type={ctx.type}", TaskFilter(type=ctx.type)),
        (f"queue={ctx.queue}", TaskFilter(queue=ctx.queue)),
        ("worker_id=<one of 4>", TaskFilter(worker_id=ctx.worker)),
        ("batch_id=<one upload>", TaskFilter(batch_id=ctx.batch)),
        (
            f"status=failed, plugin_id={ctx.small_plugin}",
            TaskFilter(status=TaskStatus.failed, plugin_id=ctx.small_plugin),
        ),
    ]


def queries(ctx: Context) -> list[Query]:
    found: list[Query] = [
        Query(
            "counts",
            "count_by_status()",
            lambda s, c: sum(s.count_by_status(TaskFilter()).values()),
        ),
        Query(
            "counts",
            f"count_by_status(plugin_id={ctx.main_plugin})",
            lambda s, c: sum(s.count_by_status(TaskFilter(plugin_id=c.main_plugin)).values()),
        ),
        Query(
            "counts",
            "count_by_status(batch_id=<one upload>)",
            lambda s, c: sum(s.count_by_status(TaskFilter(batch_id=c.batch)).values()),
        ),
        Query("counts", "count_tasks()", lambda s, c: s.count_tasks(TaskFilter())),
    ]
    for label, flt in _filters(ctx):
        found.append(Query("counts", f"count_tasks({label})", _count(flt)))
    pages: list[tuple[str, TaskFilter, int]] = [
        ("", TaskFilter(), 0),
        ("status=failed", TaskFilter(status=TaskStatus.failed), 0),
        (f"plugin_id={ctx.main_plugin}", TaskFilter(plugin_id=ctx.main_plugin), 0),
        (
            f"status=failed, plugin_id={ctx.small_plugin}",
            TaskFilter(status=TaskStatus.failed, plugin_id=ctx.small_plugin),
            0,
        ),
        ("", TaskFilter(), ctx.deep),
        ("status=succeeded", TaskFilter(status=TaskStatus.succeeded), ctx.deep),
        (f"plugin_id={ctx.main_plugin}", TaskFilter(plugin_id=ctx.main_plugin), ctx.deep),
    ]
    for label, flt, offset in pages:
        where = f"{label}, " if label else ""
        name = f"list_tasks({where}offset={'N/2' if offset else 0}, limit={PAGE})"
        found.append(
            Query(
                "list (deep)" if offset else "list",
                name,
                _page(flt, deep=bool(offset)),
            )
        )
    found += [
        Query("single", "get_task(id), per call", _get_tasks),
        Query(
            "export",
            f"iter_tasks(batch_id=<one upload>) all {SLICE:,}",
            lambda s, c: sum(1 for _ in s.iter_tasks(TaskFilter(batch_id=c.batch))),
        ),
        Query(
            "export",
            f"iter_tasks(status=succeeded) first {SLICE:,}",
            lambda s, c: sum(
                1
                for _ in itertools.islice(
                    s.iter_tasks(TaskFilter(status=TaskStatus.succeeded)), SLICE
                )
            ),
        ),
        Query(
            "stats",
            "throughput(last hour, 60 s buckets)",
            lambda s, c: sum(b.succeeded + b.failed for b in s.throughput(c.since, 60)),
        ),
        Query(
            "background",
            f"queued_tasks({ctx.queue}, limit {REPUBLISH_LIMIT:,}) (recovery)",
            lambda s, c: len(s.queued_tasks(c.queue, c.created_before, REPUBLISH_LIMIT)),
        ),
    ]
    return found


def _count(flt: TaskFilter) -> Callable[[SqliteStore, Context], int]:
    return lambda store, ctx: store.count_tasks(flt)


def _page(flt: TaskFilter, deep: bool) -> Callable[[SqliteStore, Context], int]:
    return lambda store, ctx: len(store.list_tasks(flt, ctx.deep if deep else 0, PAGE))


GET_TASK_CALLS = 200
BATCH_WRITE = 500  # the example plugin's batch.max_items


def _get_tasks(store: SqliteStore, ctx: Context) -> int:
    """GET_TASK_CALLS lookups; the timing is divided by that (see measure)."""
    return sum(store.get_task(task_id) is not None for task_id in ctx.task_ids[:GET_TASK_CALLS])


@dataclass
class Timing:
    seconds: float
    rows: int
    plans: list[str]


def measure(store: SqliteStore, query: Query, ctx: Context) -> Timing:
    """Median of several runs after a warm-up run that captures the SQL for the plans."""
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        rows = query.run(store, ctx)
    finally:
        store._conn.set_trace_callback(None)
    plans = explain(store, statements)
    runs: list[float] = []
    budget = time.perf_counter() + 3.0
    while len(runs) < 7 and (len(runs) < 3 or time.perf_counter() < budget):
        started = time.perf_counter()
        query.run(store, ctx)
        runs.append(time.perf_counter() - started)
    seconds = statistics.median(runs)
    if query.run is _get_tasks:
        seconds /= GET_TASK_CALLS
    return Timing(seconds, rows, plans)


def explain(store: SqliteStore, statements: list[str]) -> list[str]:
    """EXPLAIN QUERY PLAN of each distinct SELECT, as indented lines (duplicates dropped)."""
    lines: list[str] = []
    seen: set[str] = set()
    for sql in statements:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        rows = store._conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        depth: dict[int, int] = {0: 0}
        plan = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            plan.append("  " * (depth[node] - 1) + detail)
        key = "\n".join(plan)
        if key not in seen:
            seen.add(key)
            lines.extend(plan)
    return lines


def plan_kind(plans: list[str]) -> str:
    scans = [line.strip() for line in plans if line.strip().startswith("SCAN")]
    temp = any("TEMP B-TREE" in line for line in plans)
    if scans:
        kind = "SCAN " + scans[0].removeprefix("SCAN ")
    elif any(line.strip().startswith("SEARCH") for line in plans):
        kind = "SEARCH " + next(
            line.strip().removeprefix("SEARCH ")
            for line in plans
            if line.strip().startswith("SEARCH")
        )
    else:
        kind = "-"
    return kind + (" + TEMP B-TREE" if temp else "")


def write_path(store: SqliteStore, ids: list[str], now: datetime) -> float:
    """Seconds per task for start_task + finish_task on queued tasks (autocommit each, as
    the control plane does)."""
    outcome = TaskOutcome(
        succeeded=True,
        result=result_for({"domain": "example.com"}, "all"),
        exit_code=0,
        duration_seconds=0.001,
        attempt=1,
    )
    started = time.perf_counter()
    for task_id in ids:
        store.start_task(task_id, WORKERS[0], now)
        store.finish_task(task_id, WORKERS[0], outcome, now)
    return (time.perf_counter() - started) / len(ids)


def batch_write_path(store: SqliteStore, ids: list[str], now: datetime) -> float:
    """Seconds per task for start_tasks + finish_tasks of one batch (what the agent's start
    and result calls for a batch plugin do: one transaction each)."""
    outcome = TaskOutcome(
        succeeded=True,
        result=result_for({"domain": "example.com"}, "all"),
        exit_code=0,
        duration_seconds=0.001,
        attempt=1,
    )
    started = time.perf_counter()
    store.start_tasks(ids, WORKERS[0], now)
    store.finish_tasks(WORKERS[0], dict.fromkeys(ids, outcome), now)
    return (time.perf_counter() - started) / len(ids)


# ---------------------------------------------------------------- candidate fixes


@dataclass
class Fix:
    problem: str
    change: str
    before: Timing
    after: Timing
    cost: str = ""


def _raw(
    sql: str, params: dict[str, Any], convert: bool = False
) -> Callable[[SqliteStore, Context], int]:
    def run(store: SqliteStore, ctx: Context) -> int:
        rows = store._conn.execute(sql, params).fetchall()
        if convert:  # build TaskViews as list_tasks does, so the comparison is fair
            return len([_task_view(row) for row in rows])
        return int(rows[0][0])

    return run


def candidate_fixes(
    store: SqliteStore, ctx: Context, before: dict[str, Timing], names: list[tuple[str, str]]
) -> list[Fix]:
    """Time the slow queries again after a change made to the bench's own copy of the
    database (or as the SQL a fixed store would run); the store's code is not touched.
    `before` is measured again here, on the same connection and cache state as `after`."""
    del before
    by_name = {name: name for _, name in names}
    fixes: list[Fix] = []

    def redo(name: str) -> Timing:
        query = next(q for q in queries(ctx) if q.name == name)
        return measure(store, query, ctx)

    # 1. Keyset pagination instead of OFFSET (iter_tasks already pages this way).
    for label, where, params in (
        ("", "", {}),
        ("status=succeeded, ", "WHERE status = :status", {"status": "succeeded"}),
    ):
        name = f"list_tasks({label}offset=N/2, limit={PAGE})"
        boundary = store._conn.execute(
            f"SELECT id FROM tasks {where} ORDER BY id DESC LIMIT 1 OFFSET :deep",
            {**params, "deep": ctx.deep - 1},
        ).fetchone()[0]
        keyset_where = f"{where} AND id < :before" if where else "WHERE id < :before"
        sql = f"SELECT * FROM tasks {keyset_where} ORDER BY id DESC LIMIT {PAGE}"
        old = redo(name)
        after = measure(
            store, Query("fix", name, _raw(sql, {**params, "before": boundary}, True)), ctx
        )
        change = f"keyset: {keyset_where} ORDER BY id DESC LIMIT {PAGE}"
        fixes.append(Fix(name, change, old, after))

    # 2. Bounded total for the page ("10,000+" past the bound) instead of an exact COUNT(*).
    for name, where, params in (
        ("count_tasks()", "", {}),
        (
            f"count_tasks(plugin_id={ctx.main_plugin})",
            "WHERE plugin_id = :plugin_id",
            {"plugin_id": ctx.main_plugin},
        ),
    ):
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM tasks {where} LIMIT 10001)"
        old = redo(name)
        after = measure(store, Query("fix", name, _raw(sql, params)), ctx)
        fixes.append(Fix(name, f"bounded: {sql}", old, after))

    # 3. (filter, status, id) indexes: counts by status covered, status + filter pages in id order.
    for column in ("plugin_id", "batch_id"):
        affected = [
            name
            for name in by_name
            if name.startswith(("count_by_status(", "count_tasks(", "list_tasks("))
            and ("plugin_id=" in name if column == "plugin_id" else "batch_id=" in name)
            and "offset=N/2" not in name
        ]
        olds = {name: redo(name) for name in affected}
        began = time.perf_counter()
        store._conn.execute(
            f"CREATE INDEX IF NOT EXISTS bench_{column}_status ON tasks ({column}, status, id)"
        )
        built = time.perf_counter() - began
        for name in affected:
            fixes.append(
                Fix(
                    name,
                    f"CREATE INDEX ON tasks ({column}, status, id)",
                    olds[name],
                    redo(name),
                    f"built in {built:.1f} s",
                )
            )
    return fixes


def print_fixes(large: int, fixes: list[Fix], write_before: float, write_after: float) -> None:
    table = Table(
        title=(
            f"Candidate fixes at {large:,} tasks (on the bench's database; the store is unchanged)"
        ),
        caption="before = the store's query as above; after = the same request with the change",
    )
    table.add_column("query")
    table.add_column("change")
    table.add_column("ms before", justify="right", no_wrap=True)
    table.add_column("ms after", justify="right", no_wrap=True)
    table.add_column("speed-up", justify="right", no_wrap=True)
    table.add_column("plan after")
    table.add_column("note")
    for fix in fixes:
        table.add_row(
            fix.problem,
            fix.change,
            fmt(1000 * fix.before.seconds, 3),
            fmt(1000 * fix.after.seconds, 3),
            ratio(fix.before.seconds, fix.after.seconds),
            "\n".join(fix.after.plans),
            fix.cost,
        )
    table.add_section()
    table.add_row(
        "start_task + finish_task, per task",
        "both indexes added",
        fmt(1000 * write_before, 3),
        fmt(1000 * write_after, 3),
        ratio(write_before, write_after),
        "",
        "the write cost of the two extra indexes",
    )
    console.print(table)


# ---------------------------------------------------------------- the control plane's memory


@dataclass
class Serving:
    label: str
    tasks: int
    startup_seconds: float
    settle_seconds: float
    """After startup + one recovery interval, until the process used < 2 % CPU for 2 s."""
    idle_rss: float
    idle_peak: float
    latencies: dict[str, float]
    peak: float


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_quiet(pid: int, timeout: float = 120.0) -> float:
    """Seconds until the process is idle (< 2 % of a core over 2 s)."""
    began = time.perf_counter()
    last = _cpu_seconds(pid)
    while time.perf_counter() - began < timeout:
        time.sleep(2.0)
        now = _cpu_seconds(pid)
        if now - last < 0.04:
            break
        last = now
    return time.perf_counter() - began


ENDPOINTS = [
    ("GET /api/tasks/counts", "/api/tasks/counts", {}),
    ("GET /api/tasks?limit=50", "/api/tasks", {"limit": 50}),
    ("GET /api/stats", "/api/stats", {}),
]


def serve(label: str, tasks: int, db_path: Path, work: Path) -> Serving:
    run_dir = Path(tempfile.mkdtemp(prefix="serve-", dir=work))
    redis_server = RedisServer(run_dir)
    plane: ControlPlane | None = None
    try:
        redis_server.start()
        plane = ControlPlane(
            redis_server.port,
            run_dir / "data",
            run_dir,
            DTS_SQLITE_PATH=str(db_path),
            **PRODUCTION_TIMERS,
        )
        started = time.perf_counter()
        plane.start()
        startup = time.perf_counter() - started
        assert plane.popen is not None
        pid = plane.popen.pid
        # Let the first recovery pass run and finish: with an empty Redis it publishes up to
        # REPUBLISH_LIMIT queued tasks per queue again, which would slow the requests below.
        time.sleep(defaults.RECOVERY_INTERVAL + 1)
        settle = _wait_quiet(pid)
        idle, idle_peak = rss_mib(pid), peak_rss_mib(pid)
        latencies: dict[str, float] = {}
        with plane.admin() as client:
            for name, path, params in ENDPOINTS:
                runs = []
                for _ in range(3):
                    began = time.perf_counter()
                    reply = client.get(path, params=params, timeout=600)
                    runs.append(time.perf_counter() - began)
                    if reply.status_code != 200:
                        raise RuntimeError(f"{name}: {reply.status_code} {reply.text[:300]}")
                latencies[name] = statistics.median(runs)
        return Serving(label, tasks, startup, settle, idle, idle_peak, latencies, peak_rss_mib(pid))
    finally:
        if plane is not None:
            plane.stop()
        redis_server.stop()


# ---------------------------------------------------------------- output


def print_queries(
    sizes: tuple[int, int],
    results: dict[int, dict[str, Timing]],
    names: list[tuple[str, str]],
    writes: dict[int, float],
    batch_writes: dict[int, float],
    inserts: dict[int, float],
    fill_seconds: dict[int, float],
    db_bytes: dict[int, int],
) -> None:
    small, large = sizes
    table = Table(
        title=(
            f"SqliteStore at {small:,} and {large:,} tasks "
            "(no HTTP; median of 3-7 runs, warm cache)"
        ),
        caption=(
            f"growth = time at {large:,} / time at {small:,}: ~1x flat, a little more "
            "logarithmic (index seek), ~10x linear (every row or index entry read); "
            "N/2 = offset "
            f"{small // 2:,} / {large // 2:,}; plan = first SCAN (else SEARCH) of EXPLAIN QUERY "
            f"PLAN at {large:,}"
        ),
    )
    table.add_column("group", no_wrap=True)
    table.add_column("query")
    table.add_column(f"ms @ {small:,}", justify="right", no_wrap=True)
    table.add_column(f"ms @ {large:,}", justify="right", no_wrap=True)
    table.add_column("growth", justify="right", no_wrap=True)
    table.add_column(f"rows @ {large:,}", justify="right", no_wrap=True)
    table.add_column("plan")
    table.add_column("verdict", no_wrap=True)
    last_group = ""
    for group, name in names:
        if last_group and group != last_group:
            table.add_section()
        last_group = group
        a, b = results[small][name], results[large][name]
        growth = b.seconds / a.seconds if a.seconds else float("nan")
        kind = plan_kind(b.plans)
        table.add_row(
            group,
            name,
            fmt(1000 * a.seconds, 3),
            fmt(1000 * b.seconds, 3),
            ratio(b.seconds, a.seconds),
            f"{b.rows:,}",
            kind,
            _verdict(kind, growth),
        )
    table.add_section()
    table.add_row(
        "write",
        "start_task + finish_task, per task",
        fmt(1000 * writes[small], 3),
        fmt(1000 * writes[large], 3),
        ratio(writes[large], writes[small]),
        "",
        "SEARCH tasks USING INDEX sqlite_autoindex_tasks_1 (id=?)",
        _verdict("SEARCH", writes[large] / writes[small]),
    )
    table.add_row(
        "write",
        f"start_tasks + finish_tasks ({BATCH_WRITE} tasks), per task",
        fmt(1000 * batch_writes[small], 3),
        fmt(1000 * batch_writes[large], 3),
        ratio(batch_writes[large], batch_writes[small]),
        "",
        "one transaction each (the batch contract's start and result calls)",
        _verdict("SEARCH", batch_writes[large] / batch_writes[small]),
    )
    table.add_row(
        "write",
        f"insert_tasks({INSERT_CHUNK:,} tasks), per task",
        fmt(1000 * inserts[small], 3),
        fmt(1000 * inserts[large], 3),
        ratio(inserts[large], inserts[small]),
        "",
        "INSERT into the table and its 10 indexes",
        _verdict("SEARCH", inserts[large] / inserts[small]),
    )
    table.add_section()
    table.add_row(
        "fill",
        "seconds to reach this size (insert + status changes)",
        fmt(fill_seconds[small], 1),
        fmt(fill_seconds[large], 1),
        "",
        "",
        f"file {db_bytes[small] / 2**20:,.0f} MiB / {db_bytes[large] / 2**20:,.0f} MiB",
        "",
    )
    console.print(table)


def _verdict(kind: str, growth: float) -> str:
    """Full scan: reads the whole table or index; reads every match: an index SEARCH whose
    matches grow with the table (a count, or row lookups to filter/group them)."""
    if growth >= 5:
        return "[red]full scan[/]" if kind.startswith("SCAN") else "[red]reads every match[/]"
    if growth >= 2.5:
        return "[yellow]grows[/]"
    return "[green]flat[/]"


def print_plans(large: int, results: dict[str, Timing], names: list[tuple[str, str]]) -> None:
    table = Table(title=f"EXPLAIN QUERY PLAN at {large:,} tasks (SQL captured from the store)")
    table.add_column("query")
    table.add_column("plan")
    for _, name in names:
        table.add_row(name, "\n".join(results[name].plans))
    console.print(table)


def print_serving(rows: list[Serving]) -> None:
    table = Table(
        title=(
            f"Control plane serving the dashboard's requests: {rows[0].tasks:,}-task database "
            "vs empty"
        ),
        caption=(
            f"settle = seconds after startup + {defaults.RECOVERY_INTERVAL:g} s (one recovery "
            "interval) until the process is idle; idle = RSS then; peak = VmHWM before and "
            "after 3 x each request; latency = median of 3"
        ),
    )
    table.add_column("database")
    for name in ("startup s", "settle s", "idle RSS MiB", "peak before MiB"):
        table.add_column(name, justify="right")
    for name, _, _ in ENDPOINTS:
        table.add_column(f"{name} ms", justify="right")
    table.add_column("peak after MiB", justify="right")
    table.add_column("peak - idle MiB", justify="right")
    for row in rows:
        table.add_row(
            f"{row.label} ({row.tasks:,} tasks)",
            fmt(row.startup_seconds, 2),
            fmt(row.settle_seconds, 1),
            fmt(row.idle_rss, 1),
            fmt(row.idle_peak, 1),
            *(fmt(1000 * row.latencies[name], 1) for name, _, _ in ENDPOINTS),
            fmt(row.peak, 1),
            fmt(row.peak - row.idle_rss, 1),
        )
    if len(rows) == 2:
        table.add_section()
        full, empty = rows
        table.add_row(
            "ratio full / empty",
            ratio(full.startup_seconds, empty.startup_seconds),
            ratio(full.settle_seconds, empty.settle_seconds),
            ratio(full.idle_rss, empty.idle_rss),
            ratio(full.idle_peak, empty.idle_peak),
            *(ratio(full.latencies[n], empty.latencies[n]) for n, _, _ in ENDPOINTS),
            ratio(full.peak, empty.peak),
            ratio(full.peak - full.idle_rss, empty.peak - empty.idle_rss),
        )
    console.print(table)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks at the large size")
    parser.add_argument(
        "--no-serve", action="store_true", help="skip the control plane memory part"
    )
    args = parser.parse_args(argv)
    large: int = args.tasks
    small = max(large // 10, 1_000)
    upload_items = min(UPLOAD_ITEMS, max(small // 10, 100))
    results: dict[int, dict[str, Timing]] = {}
    writes: dict[int, float] = {}
    batch_writes: dict[int, float] = {}
    inserts: dict[int, float] = {}
    fill_seconds: dict[int, float] = {}
    db_bytes: dict[int, int] = {}
    names: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="dts-bench-store-") as tmp:
        work = Path(tmp)
        db_path = work / "store" / "control_plane.sqlite3"
        store = SqliteStore(db_path)
        try:
            fill = Fill(store, large, upload_items)
            ctx: Context | None = None
            filling = 0.0
            for size in (small, large):
                console.print(f"[bold]filling[/] to {size:,} tasks ...")
                started = time.perf_counter()
                fill.grow_to(size, console.print)
                filling += time.perf_counter() - started
                fill_seconds[size] = filling
                store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                db_bytes[size] = db_path.stat().st_size
                if ctx is None:
                    # The same arguments at both sizes: an old upload (finished by now),
                    # the biggest plugin, a small one, a worker, ids spread over the range.
                    batch_id = fill.uploads[len(fill.uploads) // 3][0]
                    rng = random.Random(SEED + 1)
                    ctx = Context(
                        count=size,
                        deep=size // 2,
                        main_plugin=fill.plugins[0].manifest.id,
                        small_plugin=fill.plugins[-1].manifest.id,
                        type=fill.plugins[0].type,
                        queue=fill.plugins[0].manifest.queue,
                        worker=WORKERS[1],
                        batch=batch_id,
                        task_ids=rng.sample(fill.ids, min(GET_TASK_CALLS, len(fill.ids))),
                        since=fill.sim_now(size) - timedelta(hours=1),
                        created_before=fill.sim_now(size) - timedelta(minutes=2),
                    )
                else:
                    ctx.count = size
                    ctx.deep = size // 2
                    ctx.since = fill.sim_now(size) - timedelta(hours=1)
                    ctx.created_before = fill.sim_now(size) - timedelta(minutes=2)
                console.print(f"[bold]timing[/] queries at {size:,} tasks ...")
                results[size] = {}
                for query in queries(ctx):
                    results[size][query.name] = measure(store, query, ctx)
                    if size == small:
                        names.append((query.group, query.name))
                # The write paths last. One more upload of 5,000 (queued); then 200 of its
                # tasks started and finished (the fill leaves them alone later: the first
                # result wins).
                fill.insert_seconds = 0.0
                fill._upload(INSERT_CHUNK)
                inserts[size] = fill.insert_seconds / INSERT_CHUNK
                writes[size] = write_path(store, fill.ids[-200:], fill.sim_now(size))
                batch_writes[size] = batch_write_path(
                    store, fill.ids[-200 - BATCH_WRITE : -200], fill.sim_now(size)
                )
        finally:
            store.close()
        assert ctx is not None
        print_queries(
            (small, large), results, names, writes, batch_writes, inserts, fill_seconds, db_bytes
        )
        print_plans(large, results[large], names)

        if not args.no_serve:
            # Agents alive (heartbeat now), so recovery does not requeue their running tasks.
            store = SqliteStore(db_path)
            try:
                for worker_id in WORKERS:
                    store.record_heartbeat(
                        worker_id, datetime.now(UTC), Heartbeat(session_id="bench", load=0.5)
                    )
                store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                store.close()
            serving: list[Serving] = []
            console.print(f"[bold]serving[/]: control plane on the {large:,}-task database ...")
            serving.append(serve("full", large, db_path, work))
            console.print("[bold]serving[/]: control plane on an empty database ...")
            serving.append(serve("empty", 0, work / "empty" / "control_plane.sqlite3", work))
            print_serving(serving)

        console.print(f"[bold]candidate fixes[/] at {large:,} tasks ...")
        store = SqliteStore(db_path)
        try:
            fixes = candidate_fixes(store, ctx, results[large], names)
            # 200 more queued tasks through the write path, now with the two extra indexes.
            queued = [
                row[0]
                for row in store._conn.execute(
                    "SELECT id FROM tasks WHERE status = 'queued' ORDER BY id DESC LIMIT 200"
                )
            ]
            write_after = write_path(store, queued, fill.sim_now(large))
        finally:
            store.close()
        print_fixes(large, fixes, writes[large], write_after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
