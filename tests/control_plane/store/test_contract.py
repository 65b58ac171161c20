"""The store contract: every backend passes every test in the first part of this file.

Backends: `sqlite` (a file under tmp_path), `mongomock` (in-memory), and `mongo` (a real
server, only when MONGO_TEST_URI is set). Each test gets an empty store.

Times are built at millisecond precision because that is what the store keeps (BSON dates
carry milliseconds, and SQLite is made to match); `test_datetimes_*` check the truncation.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import mongomock
import pytest

from control_plane.store import (
    NewTask,
    PluginRecord,
    Store,
    StoreError,
    TaskFilter,
    ThroughputBucket,
    WorkerRecord,
    open_store,
    redact_uri,
)
from control_plane.store.mongo import MongoStore
from control_plane.store.sqlite import SqliteStore
from task_contract.api import FailureKind, Heartbeat, TaskOutcome, TaskStatus, TaskView
from task_contract.manifest import PluginLimits, PluginManifest, PluginParameter

MONGO_TEST_URI = os.environ.get("MONGO_TEST_URI")

# Hour-aligned, so throughput buckets of 60 s and 3600 s start exactly on it.
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- fixtures --------------------------------------------------------------------------


# The real-server param exists only where a MongoDB is configured: none can be installed on
# the machines this project is developed and tested on (see the README).
BACKENDS = ["sqlite", "mongomock", *(["mongo"] if MONGO_TEST_URI else [])]
# mongomock matches a filter, then modifies the document in Python without a lock, so racing
# threads can both match (measured: ~2% of 8-thread finish races recorded two outcomes). A
# real server updates one document atomically, so the race tests run on the others only.
THREAD_SAFE_BACKENDS = [b for b in BACKENDS if b != "mongomock"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test; `store` is built from it."""
    name: str = request.param
    return name


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    if backend == "sqlite":
        # A nested path also checks that the store creates parent directories.
        sqlite_store = SqliteStore(tmp_path / "nested" / "dir" / "store.sqlite3")
        try:
            yield sqlite_store
        finally:
            sqlite_store.close()
    elif backend == "mongomock":
        mock_store = MongoStore(mongomock.MongoClient(), "dts_contract")
        try:
            yield mock_store
        finally:
            mock_store.close()
    else:
        yield from _real_mongo_store()


def _real_mongo_store() -> Iterator[Store]:
    import pymongo

    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        MONGO_TEST_URI, serverSelectionTimeoutMS=5000
    )
    db_name = f"dts_contract_{uuid.uuid4().hex[:12]}"
    mongo_store = MongoStore(client, db_name)
    try:
        yield mongo_store
    finally:
        client.drop_database(db_name)  # before close(): the store closes the client
        mongo_store.close()


# --- builders --------------------------------------------------------------------------


def task_id(n: int) -> str:
    return f"t{n:08d}"  # sorts in creation order, like control_plane.ids


def new_task(n: int, **overrides: Any) -> NewTask:
    fields: dict[str, Any] = {
        "id": task_id(n),
        "type": "sum",
        "data": {"n": n},
        "plugin_id": "calc",
        "plugin_version": "1.0.0",
        "queue": "default",
        "parameters": {"scale": 2},
        "created_at": at(n),
        "batch_id": None,
    }
    fields.update(overrides)
    return NewTask(**fields)


def queued_view(task: NewTask) -> TaskView:
    """What get_task must return for a task nobody touched since insert."""
    return TaskView(
        id=task.id,
        type=task.type,
        data=task.data,
        plugin_id=task.plugin_id,
        plugin_version=task.plugin_version,
        queue=task.queue,
        parameters=task.parameters,
        status=TaskStatus.queued,
        attempts=0,
        created_at=task.created_at,
        batch_id=task.batch_id,
    )


def manifest(plugin_id: str = "calc", version: str = "1.0.0", **overrides: Any) -> PluginManifest:
    return PluginManifest(
        id=plugin_id,
        name=f"Plugin {plugin_id}",
        version=version,
        docker_image=f"registry.example/{plugin_id}:{version}",
        **overrides,
    )


def worker(worker_id: str, registered_at: datetime, **overrides: Any) -> WorkerRecord:
    return WorkerRecord(
        id=worker_id,
        name=f"name-{worker_id}",
        credential_hash=f"hash-{worker_id}",
        registered_at=registered_at,
        **overrides,
    )


def succeeded(result: Any = None, duration: float = 1.5) -> TaskOutcome:
    return TaskOutcome(succeeded=True, result=result, duration_seconds=duration)


def failed(error: str = "boom", kind: FailureKind = FailureKind.exit_nonzero) -> TaskOutcome:
    return TaskOutcome(succeeded=False, error=error, failure_kind=kind, exit_code=1)


def existing(store: Store, tid: str) -> TaskView:
    view = store.get_task(tid)
    assert view is not None, f"{tid} not found"
    return view


def assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


# --- meta ------------------------------------------------------------------------------


def test_meta_is_set_only_when_absent(store: Store) -> None:
    assert store.get_meta("enrollment_token_hash") is None

    assert store.set_meta_if_absent("enrollment_token_hash", "first") == "first"
    assert store.set_meta_if_absent("enrollment_token_hash", "second") == "first"

    assert store.get_meta("enrollment_token_hash") == "first"
    assert store.get_meta("other") is None


@pytest.mark.parametrize("backend", THREAD_SAFE_BACKENDS)
def test_meta_concurrent_set_if_absent_agrees_on_one_value(store: Store) -> None:
    barrier = threading.Barrier(8)
    seen: list[str] = []

    def contend(i: int) -> None:
        barrier.wait()
        seen.append(store.set_meta_if_absent("admin_token_hash", f"value-{i}"))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = store.get_meta("admin_token_hash")
    assert stored is not None and stored.startswith("value-")
    assert seen == [stored] * 8


# --- plugins ---------------------------------------------------------------------------


def test_upsert_plugin_creates_then_updates(store: Store) -> None:
    first = manifest(
        version="1.0.0",
        description="adds numbers",
        parameters=[PluginParameter(name="scale", type="integer", default=1)],
        limits=PluginLimits(timeout_seconds=60, memory_mb=256, network=True),
    )
    record, created = store.upsert_plugin(first, at(0))
    assert created is True
    assert record == PluginRecord(manifest=first, created_at=at(0), updated_at=at(0))
    assert store.get_plugin("calc") == record

    second = first.model_copy(update={"version": "2.0.0", "enabled": False})
    record, created = store.upsert_plugin(second, at(90.5))
    assert created is False
    assert record == PluginRecord(manifest=second, created_at=at(0), updated_at=at(90.5))
    stored = store.get_plugin("calc")
    assert stored == record
    assert stored is not None and stored.manifest.version == "2.0.0"

    assert store.get_plugin("missing") is None


def test_list_plugins_is_ordered_by_id(store: Store) -> None:
    assert store.list_plugins() == []
    for plugin_id in ("zeta", "alpha", "mid-1"):
        store.upsert_plugin(manifest(plugin_id), at(0))
    store.upsert_plugin(manifest("alpha", version="1.1.0"), at(10))

    plugins = store.list_plugins()

    assert [p.manifest.id for p in plugins] == ["alpha", "mid-1", "zeta"]
    assert [p.manifest.version for p in plugins] == ["1.1.0", "1.0.0", "1.0.0"]
    assert plugins[0].updated_at == at(10)


# --- inserting and reading tasks -------------------------------------------------------


def test_inserted_task_reads_back_queued_with_every_field(store: Store) -> None:
    task = new_task(1, batch_id="batch-1", parameters={"scale": 3, "mode": "fast"})
    store.insert_tasks([task])
    store.insert_tasks([])  # a no-op, not an error

    assert store.get_task(task.id) == queued_view(task)
    assert store.get_task("t-missing") is None
    assert store.count_tasks(TaskFilter()) == 1


def test_duplicate_task_id_raises_store_error(store: Store) -> None:
    store.insert_tasks([new_task(1)])
    with pytest.raises(StoreError):
        store.insert_tasks([new_task(1, type="other")])
    stored = store.get_task(task_id(1))
    assert stored is not None and stored.type == "sum"


BULK = 5000


def _bulk_task(n: int) -> NewTask:
    return new_task(
        n,
        plugin_id=f"p{n % 3}",
        type=("sum", "mul")[n % 2],
        queue=f"q{n % 4}",
        batch_id=f"b{n // 1000}",
    )


def _matches(view: dict[str, Any], flt: TaskFilter) -> bool:
    wanted = {
        "status": flt.status,
        "plugin_id": flt.plugin_id,
        "type": flt.type,
        "queue": flt.queue,
        "worker_id": flt.worker_id,
        "batch_id": flt.batch_id,
    }
    return all(value is None or view[name] == value for name, value in wanted.items())


BULK_FILTERS = [
    TaskFilter(),
    TaskFilter(status=TaskStatus.queued),
    TaskFilter(status=TaskStatus.running),
    TaskFilter(status=TaskStatus.succeeded),
    TaskFilter(status=TaskStatus.failed),
    TaskFilter(plugin_id="p1"),
    TaskFilter(type="mul"),
    TaskFilter(queue="q2"),
    TaskFilter(worker_id="w-a"),
    TaskFilter(worker_id="w-b"),
    TaskFilter(batch_id="b3"),
    TaskFilter(plugin_id="p0", queue="q2", status=TaskStatus.queued),
    TaskFilter(batch_id="b4", worker_id="w-b", status=TaskStatus.running),
    TaskFilter(plugin_id="nope"),
]


def test_bulk_insert_then_filter_count_and_list(store: Store) -> None:
    tasks = [_bulk_task(n) for n in range(BULK)]
    store.insert_tasks(tasks)

    # A model of what the store should hold, kept next to the operations below.
    model: dict[str, dict[str, Any]] = {
        t.id: {
            "status": TaskStatus.queued,
            "plugin_id": t.plugin_id,
            "type": t.type,
            "queue": t.queue,
            "worker_id": None,
            "batch_id": t.batch_id,
        }
        for t in tasks
    }
    # Few enough single-task writes to keep mongomock (a linear scan per update) quick.
    for n in range(0, BULK, 100):
        worker_id = "w-a" if n % 200 == 0 else "w-b"
        assert store.start_task(task_id(n), worker_id, at(BULK + n)) is not None
        model[task_id(n)].update(status=TaskStatus.running, worker_id=worker_id)
    for n in range(0, BULK, 300):
        assert store.finish_task(task_id(n), "w-a", succeeded(n), at(2 * BULK + n))
        model[task_id(n)].update(status=TaskStatus.succeeded, worker_id="w-a")
    for n in range(25, BULK, 250):  # never started: finishing from queued is allowed
        assert store.finish_task(task_id(n), "w-b", failed(), at(2 * BULK + n))
        model[task_id(n)].update(status=TaskStatus.failed, worker_id="w-b")

    for flt in BULK_FILTERS:
        expected = sorted((i for i, v in model.items() if _matches(v, flt)), reverse=True)
        assert store.count_tasks(flt) == len(expected), flt
        assert [t.id for t in store.list_tasks(flt, 0, 25)] == expected[:25], flt
        assert [t.id for t in store.list_tasks(flt, 10, 5)] == expected[10:15], flt

    for flt in (TaskFilter(), TaskFilter(plugin_id="p2"), TaskFilter(queue="q1", type="mul")):
        expected_counts = dict.fromkeys(TaskStatus, 0)
        for view in model.values():
            if _matches(view, flt):
                expected_counts[view["status"]] += 1
        assert store.count_by_status(flt) == expected_counts, flt
        # flt.status is ignored by count_by_status.
        assert store.count_by_status(replace(flt, status=TaskStatus.failed)) == expected_counts

    # Every field survived the bulk write, not just the ones filtered on.
    assert store.get_task(task_id(4321)) == queued_view(tasks[4321])


def test_list_tasks_pages_newest_first(store: Store) -> None:
    # Inserted out of id order: listing order is by id, not by insertion.
    numbers = list(range(25))
    random.Random(7).shuffle(numbers)
    store.insert_tasks([new_task(n) for n in numbers])
    newest_first = [task_id(n) for n in reversed(range(25))]

    pages = [[t.id for t in store.list_tasks(TaskFilter(), off, 10)] for off in (0, 10, 20)]

    assert pages == [newest_first[0:10], newest_first[10:20], newest_first[20:25]]
    assert store.list_tasks(TaskFilter(), 25, 10) == []
    assert store.list_tasks(TaskFilter(), 0, 0) == []
    assert len(store.list_tasks(TaskFilter(), 0, 1000)) == 25


def test_count_by_status_lists_every_status_even_when_empty(store: Store) -> None:
    assert store.count_by_status(TaskFilter()) == dict.fromkeys(TaskStatus, 0)
    store.insert_tasks([new_task(1), new_task(2)])
    store.start_task(task_id(2), "w1", at(5))

    assert store.count_by_status(TaskFilter()) == {
        TaskStatus.queued: 1,
        TaskStatus.running: 1,
        TaskStatus.succeeded: 0,
        TaskStatus.failed: 0,
    }


def test_concurrent_inserts_and_reads(store: Store) -> None:
    errors: list[BaseException] = []

    def insert(thread_no: int) -> None:
        try:
            for batch in range(5):
                base = thread_no * 1000 + batch * 50
                store.insert_tasks([new_task(base + i) for i in range(50)])
                store.count_by_status(TaskFilter())
                store.list_tasks(TaskFilter(), 0, 10)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert store.count_tasks(TaskFilter()) == 4 * 5 * 50


# --- iter_tasks ------------------------------------------------------------------------


def test_iter_tasks_streams_everything_in_ascending_id_order(store: Store) -> None:
    numbers = list(range(100))
    random.Random(3).shuffle(numbers)
    tasks = {n: new_task(n, queue=f"q{n % 3}") for n in numbers}
    store.insert_tasks(list(tasks.values()))

    streamed = list(store.iter_tasks(TaskFilter(), chunk_size=7))

    assert [t.id for t in streamed] == [task_id(n) for n in range(100)]
    assert streamed[42] == queued_view(tasks[42])
    # A chunk size that divides the total exactly ends cleanly too.
    assert len(list(store.iter_tasks(TaskFilter(), chunk_size=10))) == 100
    q1 = [t.id for t in store.iter_tasks(TaskFilter(queue="q1"), chunk_size=7)]
    assert q1 == [task_id(n) for n in range(100) if n % 3 == 1]
    assert list(store.iter_tasks(TaskFilter(plugin_id="nope"), chunk_size=7)) == []


def test_iter_tasks_tolerates_store_writes_between_chunks(store: Store) -> None:
    """Streaming holds no lock between items, and changing the filtered field of rows
    already seen must not make later rows skipped (as offset paging would)."""
    store.insert_tasks([new_task(n) for n in range(50)])

    seen = []
    for view in store.iter_tasks(TaskFilter(status=TaskStatus.queued), chunk_size=7):
        seen.append(view.id)
        store.start_task(view.id, "w1", at(100))

    assert seen == [task_id(n) for n in range(50)]
    assert store.count_tasks(TaskFilter(status=TaskStatus.running)) == 50


# --- start_task ------------------------------------------------------------------------


def test_start_task_counts_attempts_and_records_worker(store: Store) -> None:
    task = new_task(1)
    store.insert_tasks([task])

    first = store.start_task(task.id, "w1", at(10))
    assert first is not None
    assert (first.status, first.attempts, first.worker_id) == (TaskStatus.running, 1, "w1")
    assert first.started_at == at(10)
    assert first.created_at == task.created_at and first.data == task.data
    assert store.get_task(task.id) == first

    # A redelivered task that is still running starts again.
    second = store.start_task(task.id, "w2", at(20))
    assert second is not None
    assert (second.status, second.attempts, second.worker_id) == (TaskStatus.running, 2, "w2")
    assert second.started_at == at(20)


def test_start_task_returns_finished_task_unchanged(store: Store) -> None:
    store.insert_tasks([new_task(1)])
    store.start_task(task_id(1), "w1", at(10))
    assert store.finish_task(task_id(1), "w1", succeeded({"ok": True}), at(20))
    before = store.get_task(task_id(1))

    after = store.start_task(task_id(1), "w2", at(30))

    assert after == before
    assert after is not None and after.status is TaskStatus.succeeded and after.attempts == 1
    assert store.get_task(task_id(1)) == before


def test_start_task_of_unknown_id_is_none(store: Store) -> None:
    assert store.start_task("t-missing", "w1", at(0)) is None
    assert store.get_task("t-missing") is None


def test_start_tasks_starts_a_batch_in_order_and_leaves_out_unknown(store: Store) -> None:
    store.insert_tasks([new_task(n) for n in range(1, 6)])
    store.start_task(task_id(3), "w0", at(5))
    assert store.finish_task(task_id(3), "w0", succeeded({"done": 3}), at(6))
    ids = [task_id(5), task_id(1), "t-missing", task_id(3), task_id(2), task_id(1)]

    started = store.start_tasks(ids, "w1", at(10))

    assert [t.id for t in started] == [task_id(5), task_id(1), task_id(3), task_id(2)]
    by_id = {t.id: t for t in started}
    for n in (1, 2, 5):
        view = by_id[task_id(n)]
        assert (view.status, view.attempts, view.worker_id) == (TaskStatus.running, 1, "w1")
        assert view.started_at == at(10)
        assert store.get_task(view.id) == view
    finished = by_id[task_id(3)]
    assert (finished.status, finished.worker_id, finished.attempts) == (
        TaskStatus.succeeded,
        "w0",
        1,
    )
    assert store.get_task(task_id(4)) == queued_view(new_task(4))


def test_finish_tasks_records_only_what_the_worker_holds(store: Store) -> None:
    store.insert_tasks([new_task(n) for n in range(1, 5)])
    store.start_tasks([task_id(1), task_id(2)], "w1", at(10))
    store.start_task(task_id(3), "w2", at(10))
    store.start_task(task_id(2), "w1", at(11))  # redelivered to the same worker: still its own
    outcomes = {
        task_id(1): succeeded({"n": 1}),
        task_id(2): failed("bad item", FailureKind.item_error),
        task_id(3): succeeded({"n": 3}),  # started by w2
        task_id(4): succeeded({"n": 4}),  # never started
        "t-missing": succeeded(),
    }

    assert store.finish_tasks("w1", outcomes, at(20)) == [task_id(1), task_id(2)]
    assert store.finish_tasks("w1", outcomes, at(21)) == []  # first result wins

    one, two = existing(store, task_id(1)), existing(store, task_id(2))
    assert (one.status, one.result, one.finished_at) == (TaskStatus.succeeded, {"n": 1}, at(20))
    assert (two.status, two.failure_kind, two.error) == (
        TaskStatus.failed,
        FailureKind.item_error,
        "bad item",
    )
    assert existing(store, task_id(3)).status is TaskStatus.running
    assert existing(store, task_id(4)).status is TaskStatus.queued


# --- finish_task -----------------------------------------------------------------------


def test_finish_task_first_result_wins(store: Store) -> None:
    store.insert_tasks([new_task(1)])
    store.start_task(task_id(1), "w1", at(10))

    assert store.finish_task(task_id(1), "w1", succeeded({"answer": 42}, 2.25), at(12.5))
    assert not store.finish_task(task_id(1), "w2", failed("late"), at(13))
    assert not store.finish_task(task_id(1), "w1", succeeded({"answer": 0}), at(14))

    view = store.get_task(task_id(1))
    assert view is not None
    assert view.status is TaskStatus.succeeded
    assert view.result == {"answer": 42}
    assert view.worker_id == "w1"
    assert view.finished_at == at(12.5)
    assert view.duration_seconds == 2.25
    assert (view.error, view.failure_kind, view.exit_code, view.stderr) == (None,) * 4
    assert view.attempts == 1 and view.started_at == at(10)


def test_finish_task_from_queued_is_allowed(store: Store) -> None:
    store.insert_tasks([new_task(1)])

    assert store.finish_task(
        task_id(1), "w9", failed("image gone", FailureKind.image_missing), at(5)
    )

    view = store.get_task(task_id(1))
    assert view is not None
    assert (view.status, view.worker_id, view.attempts) == (TaskStatus.failed, "w9", 0)
    assert view.started_at is None and view.finished_at == at(5)
    assert view.failure_kind is FailureKind.image_missing


def test_finish_task_of_unknown_id_is_false(store: Store) -> None:
    assert store.finish_task("t-missing", "w1", succeeded(), at(0)) is False
    assert store.get_task("t-missing") is None


@pytest.mark.parametrize("kind", list(FailureKind))
def test_failure_fields_round_trip(store: Store, kind: FailureKind) -> None:
    store.insert_tasks([new_task(1)])
    store.start_task(task_id(1), "w1", at(1))
    outcome = TaskOutcome(
        succeeded=False,
        error=f"failed: {kind.value} — détails",
        failure_kind=kind,
        exit_code=137,
        stderr='Traceback (most recent call last):\n  File "x.py"\nValueError: ✗ 失败\n',
        duration_seconds=0.125,
        result={"partial": [1, 2]},
    )

    assert store.finish_task(task_id(1), "w1", outcome, at(3))

    view = store.get_task(task_id(1))
    assert view is not None
    assert view.status is TaskStatus.failed
    assert view.failure_kind is kind
    assert view.error == outcome.error
    assert view.exit_code == 137
    assert view.stderr == outcome.stderr
    assert view.duration_seconds == 0.125
    assert view.result == {"partial": [1, 2]}


def _race_to_finish(store: Store, tid: str, racers: int) -> dict[int, bool]:
    """`racers` threads released together, each reporting its own outcome for `tid`."""
    barrier = threading.Barrier(racers)
    wins: dict[int, bool] = {}

    def race(i: int) -> None:
        barrier.wait()
        outcome = succeeded({"racer": i}) if i % 2 else failed(f"racer {i}")
        wins[i] = store.finish_task(tid, f"w{i}", outcome, at(10 + i))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wins


@pytest.mark.parametrize("backend", THREAD_SAFE_BACKENDS)
def test_concurrent_finish_records_exactly_one_outcome(store: Store) -> None:
    rounds, racers = 10, 8
    store.insert_tasks([new_task(n) for n in range(rounds)])
    for n in range(rounds):
        store.start_task(task_id(n), "w0", at(1))

        wins = _race_to_finish(store, task_id(n), racers)

        winners = [i for i, won in wins.items() if won]
        assert len(wins) == racers and len(winners) == 1, wins
        (winner,) = winners
        view = store.get_task(task_id(n))
        assert view is not None
        assert view.worker_id == f"w{winner}"
        assert view.finished_at == at(10 + winner)
        if winner % 2:
            assert view.status is TaskStatus.succeeded and view.result == {"racer": winner}
        else:
            assert view.status is TaskStatus.failed and view.error == f"racer {winner}"


# --- requeue_running and queued_tasks --------------------------------------------------


def test_requeue_running_respects_keep_and_started_before(store: Store) -> None:
    store.insert_tasks([new_task(n, queue=("q-even", "q-odd")[n % 2]) for n in range(1, 8)])
    for n, started in ((1, 10), (2, 20), (3, 30), (4, 40)):
        store.start_task(task_id(n), "w1", at(started))
    store.start_task(task_id(5), "w2", at(10))  # another worker's
    store.start_task(task_id(6), "w1", at(5))
    store.finish_task(task_id(6), "w1", succeeded(), at(6))  # finished: never requeued
    # task 7 stays queued

    requeued = store.requeue_running("w1", keep=[task_id(2)], started_before=at(30))

    assert requeued == [(task_id(1), "q-odd")]
    statuses = {n: existing(store, task_id(n)).status for n in range(1, 8)}
    assert statuses == {
        1: TaskStatus.queued,
        2: TaskStatus.running,  # kept
        3: TaskStatus.running,  # started at started_before, not before it
        4: TaskStatus.running,
        5: TaskStatus.running,
        6: TaskStatus.succeeded,
        7: TaskStatus.queued,
    }

    rest = store.requeue_running("w1")
    assert sorted(rest) == [(task_id(2), "q-even"), (task_id(3), "q-odd"), (task_id(4), "q-even")]
    assert store.requeue_running("w1") == []
    assert store.count_tasks(TaskFilter(status=TaskStatus.running)) == 1  # w2's task 5

    # A requeued task starts again as a new attempt.
    restarted = store.start_task(task_id(1), "w2", at(50))
    assert restarted is not None and restarted.attempts == 2 and restarted.worker_id == "w2"


def test_queued_tasks_oldest_first_with_limit_and_cutoff(store: Store) -> None:
    numbers = list(range(10))
    random.Random(5).shuffle(numbers)
    store.insert_tasks([new_task(n, queue="a" if n < 8 else "b") for n in numbers])
    store.start_task(task_id(2), "w1", at(20))
    store.finish_task(task_id(3), "w1", succeeded(), at(20))

    assert store.queued_tasks("a", at(100), 100) == [task_id(n) for n in (0, 1, 4, 5, 6, 7)]
    assert store.queued_tasks("a", at(100), 3) == [task_id(n) for n in (0, 1, 4)]
    # created_before is exclusive: task 5 was created at exactly at(5).
    assert store.queued_tasks("a", at(5), 100) == [task_id(n) for n in (0, 1, 4)]
    assert store.queued_tasks("b", at(100), 100) == [task_id(8), task_id(9)]
    assert store.queued_tasks("c", at(100), 100) == []
    assert store.queued_tasks("a", at(100), 0) == []


# --- throughput ------------------------------------------------------------------------


def test_throughput_buckets_finished_tasks(store: Store) -> None:
    store.insert_tasks([new_task(n) for n in range(8)])
    finishes = [
        (0, -10.0, True),  # before `since`
        (1, 5.0, True),
        (2, 30.0, False),
        (3, 59.999, True),
        (4, 60.0, False),
        (5, 185.0, True),
        (6, 3700.0, True),
    ]  # task 7 never finishes
    for n, seconds, ok in finishes:
        assert store.finish_task(task_id(n), "w1", succeeded() if ok else failed(), at(seconds))

    assert store.throughput(T0, 60) == [
        ThroughputBucket(start=at(0), succeeded=2, failed=1),
        ThroughputBucket(start=at(60), succeeded=0, failed=1),
        ThroughputBucket(start=at(180), succeeded=1, failed=0),
        ThroughputBucket(start=at(3660), succeeded=1, failed=0),
    ]
    assert store.throughput(at(61), 60) == [
        ThroughputBucket(start=at(180), succeeded=1, failed=0),
        ThroughputBucket(start=at(3660), succeeded=1, failed=0),
    ]
    assert store.throughput(at(-60), 3600) == [
        ThroughputBucket(start=at(-3600), succeeded=1, failed=0),
        ThroughputBucket(start=at(0), succeeded=3, failed=2),
        ThroughputBucket(start=at(3600), succeeded=1, failed=0),
    ]
    assert store.throughput(at(4000), 60) == []


# --- workers ---------------------------------------------------------------------------


def test_workers_create_get_and_list_newest_first(store: Store) -> None:
    assert store.list_workers() == []
    assert store.get_worker("w1") is None
    w1 = worker(
        "w1",
        at(0),
        hostname="box-1",
        platform="linux/amd64",
        concurrency=4,
        cpus=3.5,
        queues=["gpu", "default"],
    )
    w2 = worker("w2", at(10))
    w3 = worker("w3", at(5), revoked=True, state="revoked")
    for record in (w1, w2, w3):
        store.create_worker(record)

    assert store.get_worker("w1") == w1
    assert store.get_worker("w3") == w3
    assert [w.id for w in store.list_workers()] == ["w2", "w3", "w1"]
    assert store.list_workers()[0] == w2

    with pytest.raises(StoreError):
        store.create_worker(worker("w1", at(20)))
    assert store.get_worker("w1") == w1


def test_record_heartbeat_updates_liveness_only(store: Store) -> None:
    original = worker("w1", at(0), concurrency=2, queues=["a", "b"], cpus=8.0)
    store.create_worker(original)

    store.record_heartbeat(
        "w1",
        at(20),
        Heartbeat(
            state="running",
            session_id="sess-1",
            running_tasks=["t1", "t2"],
            load=0.5,
            concurrency=3,
        ),
    )

    assert store.get_worker("w1") == replace(
        original,
        last_heartbeat=at(20),
        state="running",
        session_id="sess-1",
        running_tasks=["t1", "t2"],
        load=0.5,
        concurrency=3,
    )  # queues None: stored ["a", "b"] kept

    store.record_heartbeat(
        "w1", at(40), Heartbeat(state="draining", session_id="sess-2", queues=["c"])
    )

    assert store.get_worker("w1") == replace(
        original,
        last_heartbeat=at(40),
        state="draining",
        session_id="sess-2",
        running_tasks=[],
        load=None,
        concurrency=3,  # None: kept
        queues=["c"],
    )

    store.record_heartbeat("w-missing", at(50), Heartbeat(state="running", session_id="s"))
    assert store.get_worker("w-missing") is None


# --- value fidelity --------------------------------------------------------------------


def test_datetimes_come_back_aware_utc_and_equal(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2024, 5, 1, 14, 0, 0, 123000, tzinfo=plus_two)  # 12:00:00.123 UTC
    store.insert_tasks([new_task(1, created_at=created)])
    store.start_task(task_id(1), "w1", at(1.5))
    store.finish_task(task_id(1), "w1", succeeded(), at(2.75))
    plugin, _ = store.upsert_plugin(manifest(), at(3.001))
    store.create_worker(worker("w1", at(4.25)))
    store.record_heartbeat("w1", at(5.5), Heartbeat(state="running"))

    view = store.get_task(task_id(1))
    assert view is not None
    assert view.created_at == created and view.started_at == at(1.5)
    assert view.finished_at == at(2.75)
    stored_plugin = store.get_plugin("calc")
    assert stored_plugin is not None and stored_plugin.created_at == at(3.001)
    stored_worker = store.get_worker("w1")
    assert stored_worker is not None
    assert stored_worker.registered_at == at(4.25) and stored_worker.last_heartbeat == at(5.5)
    for value in (
        view.created_at,
        view.started_at,
        view.finished_at,
        plugin.created_at,
        stored_plugin.created_at,
        stored_plugin.updated_at,
        stored_worker.registered_at,
        stored_worker.last_heartbeat,
        store.throughput(T0, 60)[0].start,
    ):
        assert_utc(value)


def test_datetimes_keep_millisecond_precision(store: Store) -> None:
    precise = at(0) + timedelta(microseconds=456_789)  # .456789 s
    store.insert_tasks([new_task(1, created_at=precise)])

    view = store.get_task(task_id(1))

    assert view is not None
    assert view.created_at == at(0.456)  # sub-millisecond part dropped, not rounded
    assert abs(view.created_at - precise) < timedelta(milliseconds=1)


def test_unicode_and_nested_json_round_trip(store: Store) -> None:
    data = {
        "text": "héllo wörld ✓ 日本語 🚀",
        "quote": "a\"b'c\\d\n\te",
        "nested": {"list": [1, 2.5, None, True, False, {"deep": ["x", {"deeper": []}]}]},
        "empty": {},
        "big": 2**53,
        "negative": -17,
        "ключ": "значение",
    }
    parameters = {"mode": "ünïcode", "opts": {"a": [1, {"b": None}]}}
    result = {"summary": "résumé ✓", "rows": [[1, "a"], [2, "b"]], "score": 0.1}
    store.insert_tasks(
        [
            new_task(1, data=data, parameters=parameters, type="análisis"),
            new_task(2, data=["top", "level", ["list"]]),
            new_task(3, data="just a string ✓"),
            new_task(4, data=None),
            new_task(5, data=3.25),
        ]
    )
    store.finish_task(task_id(1), "w1", succeeded(result), at(10))

    first = store.get_task(task_id(1))
    assert first is not None
    assert (first.data, first.parameters, first.result) == (data, parameters, result)
    assert first.type == "análisis"
    assert [existing(store, task_id(n)).data for n in (2, 3, 4, 5)] == [
        ["top", "level", ["list"]],
        "just a string ✓",
        None,
        3.25,
    ]


# --- backend specifics and the factory (not parametrised) ------------------------------


def test_sqlite_reopens_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    first = SqliteStore(path)
    first.insert_tasks([new_task(1)])
    first.set_meta_if_absent("k", "v")
    first.close()

    second = SqliteStore(path)  # schema creation is idempotent
    try:
        assert second.get_task(task_id(1)) == queued_view(new_task(1))
        assert second.get_meta("k") == "v"
    finally:
        second.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_error_after_close_is_store_error(tmp_path: Path) -> None:
    closed = SqliteStore(tmp_path / "store.sqlite3")
    closed.close()
    with pytest.raises(StoreError, match="get_task"):
        closed.get_task("t1")


def test_open_store_without_mongo_uri_is_sqlite(tmp_path: Path) -> None:
    opened = open_store(None, "dts", tmp_path / "a" / "store.sqlite3")
    try:
        assert isinstance(opened, SqliteStore)
        assert (tmp_path / "a" / "store.sqlite3").exists()
    finally:
        opened.close()


def test_open_store_with_mongo_uri_is_mongo(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymongo

    monkeypatch.setattr(pymongo, "MongoClient", mongomock.MongoClient)
    opened = open_store("mongodb://db.example:27017", "dts", Path("/nonexistent/unused"))
    try:
        assert isinstance(opened, MongoStore)
        assert opened.set_meta_if_absent("k", "v") == "v"
    finally:
        opened.close()


def test_open_store_unreachable_mongo_names_uri_without_password() -> None:
    uri = "mongodb://alice:s3cret@127.0.0.1:1/?directConnection=true"
    with pytest.raises(StoreError) as caught:
        open_store(uri, "dts", Path("/nonexistent/unused"), server_selection_timeout_ms=200)
    message = str(caught.value)
    assert message.startswith("cannot reach MongoDB at mongodb://alice:***@127.0.0.1:1/")
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://u:p@h:1/db", "mongodb://u:***@h:1/db"),
        ("mongodb+srv://user:pa%40ss@cluster.example/", "mongodb+srv://user:***@cluster.example/"),
        ("mongodb://h1:1,h2:2/db?replicaSet=rs", "mongodb://h1:1,h2:2/db?replicaSet=rs"),
        ("mongodb://onlyuser@h/", "mongodb://onlyuser@h/"),
    ],
)
def test_redact_uri_hides_only_the_password(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_counts_follow_every_status_change(store: Store) -> None:
    store.insert_tasks([new_task(n) for n in range(1, 7)])
    store.start_tasks([task_id(1), task_id(2), task_id(3)], "w1", at(10))
    store.start_task(task_id(4), "w2", at(10))
    store.finish_tasks("w1", {task_id(1): succeeded(), task_id(2): failed()}, at(20))
    store.finish_task(task_id(4), "w2", succeeded(), at(21))
    assert store.requeue_running("w1") == [(task_id(3), "default")]
    store.start_task(task_id(5), "w2", at(30))

    expected = {
        TaskStatus.queued: 2,
        TaskStatus.running: 1,
        TaskStatus.succeeded: 2,
        TaskStatus.failed: 1,
    }
    assert store.count_by_status(TaskFilter()) == expected
    assert store.count_tasks(TaskFilter()) == 6
    assert store.count_tasks(TaskFilter(status=TaskStatus.succeeded)) == 2
    listed = [t.status for t in store.list_tasks(TaskFilter(), 0, 100)]
    assert {s: listed.count(s) for s in TaskStatus} == expected


def test_sqlite_counts_are_rebuilt_for_a_database_from_before_them(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    first = SqliteStore(path)
    first.insert_tasks([new_task(n) for n in range(1, 5)])
    first.start_task(task_id(1), "w1", at(10))
    first.close()
    with sqlite3.connect(path) as conn:  # what an older version left behind
        for trigger in ("task_counts_update", "task_counts_delete"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE task_counts")
    reopened = SqliteStore(path)
    try:
        assert reopened.count_by_status(TaskFilter())[TaskStatus.queued] == 3
        assert reopened.count_by_status(TaskFilter())[TaskStatus.running] == 1
        reopened.insert_tasks([new_task(9)])
        assert reopened.count_tasks(TaskFilter(status=TaskStatus.queued)) == 4
    finally:
        reopened.close()
