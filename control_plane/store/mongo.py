"""MongoDB backend: for installs where several control-plane processes share one store.

Tasks live in `tasks` with the task id as `_id`; `plugins`, `workers` and `meta` likewise
key on their id. Datetimes are BSON dates (naive UTC on the wire, millisecond precision)
and come back aware UTC. Every state transition is one conditional update filtered on
status, so concurrent control-plane processes agree on who won.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pymongo
from bson.errors import BSONError
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

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

_ASC = pymongo.ASCENDING
_DESC = pymongo.DESCENDING

# Same reasoning as the SQLite indexes: equality filters end in `_id` so filtered lists
# sorted by id read the index in order instead of sorting every match.
_TASK_INDEXES: list[list[tuple[str, int]]] = [
    [("status", _ASC), ("_id", _ASC)],
    [("plugin_id", _ASC), ("_id", _ASC)],
    [("type", _ASC), ("_id", _ASC)],
    [("queue", _ASC), ("_id", _ASC)],
    [("worker_id", _ASC), ("_id", _ASC)],
    [("batch_id", _ASC), ("_id", _ASC)],
    [("queue", _ASC), ("status", _ASC), ("_id", _ASC)],
    # Per-plugin and per-upload counts by status (dashboard, `dts wait`) read only the index.
    [("plugin_id", _ASC), ("status", _ASC), ("_id", _ASC)],
    [("batch_id", _ASC), ("status", _ASC), ("_id", _ASC)],
    [("status", _ASC), ("finished_at", _ASC)],
    [("worker_id", _ASC), ("status", _ASC)],
]
_WORKER_INDEXES: list[list[tuple[str, int]]] = [[("registered_at", _DESC), ("_id", _DESC)]]

_EPOCH = records.EPOCH.replace(tzinfo=None)


@contextmanager
def _errors(operation: str) -> Iterator[None]:
    """Driver errors become StoreError naming the operation.

    BSON encoding errors are included: a task value MongoDB cannot represent (say an
    integer beyond 64 bits) is the store refusing the operation, not a programming error.
    """
    try:
        yield
    except (PyMongoError, BSONError, OverflowError) as exc:
        raise StoreError(f"MongoDB {operation} failed: {exc}") from exc


# --- value encoding --------------------------------------------------------------------


def _to_bson_date(value: datetime) -> datetime:
    return records.truncate_millis(value).replace(tzinfo=None)


def _from_bson_date(value: datetime) -> datetime:
    # Naive from a default client, aware if the caller built it with tz_aware=True.
    return records.utc(value)


def _to_doc(fields: Mapping[str, Any], datetime_fields: Sequence[str]) -> dict[str, Any]:
    doc = dict(fields)
    if "id" in doc:
        doc["_id"] = doc.pop("id")
    for name in datetime_fields:
        if doc.get(name) is not None:
            doc[name] = _to_bson_date(doc[name])
    return doc


def _from_doc(doc: Mapping[str, Any], datetime_fields: Sequence[str]) -> dict[str, Any]:
    fields = dict(doc)
    fields["id"] = fields.pop("_id")
    for name in datetime_fields:
        if fields.get(name) is not None:
            fields[name] = _from_bson_date(fields[name])
    return fields


def _task_view(doc: Mapping[str, Any]) -> TaskView:
    return records.task_view(_from_doc(doc, records.TASK_DATETIME_FIELDS))


def _worker_record(doc: Mapping[str, Any]) -> WorkerRecord:
    return records.worker_record(_from_doc(doc, records.WORKER_DATETIME_FIELDS))


def _plugin_record(doc: Mapping[str, Any]) -> PluginRecord:
    return PluginRecord(
        manifest=PluginManifest.model_validate(doc["manifest"]),
        created_at=_from_bson_date(doc["created_at"]),
        updated_at=_from_bson_date(doc["updated_at"]),
    )


class MongoStore(Store):
    """The store owns `client` from here on: `close()` closes it."""

    def __init__(self, client: pymongo.MongoClient[Any], db_name: str) -> None:
        self._client = client
        db = client[db_name]
        self._tasks: Collection[Any] = db["tasks"]
        self._plugins: Collection[Any] = db["plugins"]
        self._workers: Collection[Any] = db["workers"]
        self._meta: Collection[Any] = db["meta"]
        with _errors("create_index"):
            # create_index is a no-op for an index that already exists.
            for keys in _TASK_INDEXES:
                self._tasks.create_index(keys)
            for keys in _WORKER_INDEXES:
                self._workers.create_index(keys)

    # --- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        with _errors("close"):
            self._client.close()

    # --- meta --------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with _errors("get_meta"):
            doc = self._meta.find_one({"_id": key})
        return None if doc is None else str(doc["value"])

    def set_meta_if_absent(self, key: str, value: str) -> str:
        with _errors("set_meta_if_absent"):
            try:
                doc = self._meta.find_one_and_update(
                    {"_id": key},
                    {"$setOnInsert": {"value": value}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                # Two processes upserting a new key at once: the loser's insert collides
                # with the winner's, whose value is the one stored.
                doc = self._meta.find_one({"_id": key})
        if doc is None:  # only if someone deleted the key in between
            raise StoreError(f"MongoDB set_meta_if_absent failed: {key!r} vanished")
        return str(doc["value"])

    # --- plugins -----------------------------------------------------------------------
    def upsert_plugin(self, manifest: PluginManifest, now: datetime) -> tuple[PluginRecord, bool]:
        now_bson = _to_bson_date(now)
        with _errors("upsert_plugin"):
            before = self._plugins.find_one_and_update(
                {"_id": manifest.id},
                {
                    "$set": {"manifest": manifest.model_dump(mode="json"), "updated_at": now_bson},
                    "$setOnInsert": {"created_at": now_bson},
                },
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
        created_at = now_bson if before is None else before["created_at"]
        record = PluginRecord(
            manifest=manifest,
            created_at=_from_bson_date(created_at),
            updated_at=_from_bson_date(now_bson),
        )
        return record, before is None

    def get_plugin(self, plugin_id: str) -> PluginRecord | None:
        with _errors("get_plugin"):
            doc = self._plugins.find_one({"_id": plugin_id})
        return None if doc is None else _plugin_record(doc)

    def list_plugins(self) -> list[PluginRecord]:
        with _errors("list_plugins"):
            docs = list(self._plugins.find().sort("_id", _ASC))
        return [_plugin_record(doc) for doc in docs]

    # --- tasks -------------------------------------------------------------------------
    def insert_tasks(self, tasks: Sequence[NewTask]) -> None:
        if not tasks:
            return  # insert_many refuses an empty list
        docs = [
            _to_doc(records.new_task_fields(task), records.TASK_DATETIME_FIELDS) for task in tasks
        ]
        # Unordered: the server may parallelise, and one bad document does not hide the
        # rest of the errors.
        with _errors("insert_tasks"):
            self._tasks.insert_many(docs, ordered=False)

    def get_task(self, task_id: str) -> TaskView | None:
        with _errors("get_task"):
            doc = self._tasks.find_one({"_id": task_id})
        return None if doc is None else _task_view(doc)

    def list_tasks(self, flt: TaskFilter, offset: int, limit: int) -> list[TaskView]:
        if limit <= 0:
            return []  # MongoDB reads limit 0 as "no limit"
        with _errors("list_tasks"):
            cursor = self._tasks.find(records.filter_fields(flt))
            docs = list(cursor.sort("_id", _DESC).skip(max(offset, 0)).limit(limit))
        return [_task_view(doc) for doc in docs]

    def count_tasks(self, flt: TaskFilter) -> int:
        conditions = records.filter_fields(flt)
        with _errors("count_tasks"):
            if not conditions:
                # Collection metadata, not a scan of every document.
                return int(self._tasks.estimated_document_count())
            return int(self._tasks.count_documents(conditions))

    def count_by_status(self, flt: TaskFilter) -> dict[TaskStatus, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": records.filter_fields(flt, with_status=False)},
            {"$group": {"_id": "$status", "n": {"$sum": 1}}},
        ]
        with _errors("count_by_status"):
            groups = list(self._tasks.aggregate(pipeline))
        counts = records.empty_status_counts()
        for group in groups:
            counts[TaskStatus(group["_id"])] = int(group["n"])
        return counts

    def iter_tasks(self, flt: TaskFilter, chunk_size: int = 1000) -> Iterator[TaskView]:
        conditions: dict[str, Any] = records.filter_fields(flt)
        limit = max(chunk_size, 1)
        while True:
            # A fresh query per chunk rather than one long cursor: no server-side cursor
            # outlives a slow consumer, and each chunk starts from the index.
            with _errors("iter_tasks"):
                docs = list(self._tasks.find(conditions).sort("_id", _ASC).limit(limit))
            yield from (_task_view(doc) for doc in docs)
            if len(docs) < limit:
                return
            conditions = {**conditions, "_id": {"$gt": docs[-1]["_id"]}}

    def start_task(self, task_id: str, worker_id: str, now: datetime) -> TaskView | None:
        with _errors("start_task"):
            doc = self._tasks.find_one_and_update(
                {"_id": task_id, "status": {"$in": list(records.UNFINISHED)}},
                {
                    "$set": {
                        "status": TaskStatus.running.value,
                        "worker_id": worker_id,
                        "started_at": _to_bson_date(now),
                    },
                    "$inc": {"attempts": 1},
                },
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:  # finished (returned unchanged) or unknown
                doc = self._tasks.find_one({"_id": task_id})
        return None if doc is None else _task_view(doc)

    def finish_task(
        self, task_id: str, worker_id: str, outcome: TaskOutcome, now: datetime
    ) -> bool:
        fields = _to_doc(records.outcome_fields(worker_id, outcome, now), ("finished_at",))
        with _errors("finish_task"):
            result = self._tasks.update_one(
                {"_id": task_id, "status": {"$in": list(records.UNFINISHED)}},
                {"$set": fields},
            )
        return result.matched_count == 1

    def start_tasks(self, task_ids: Sequence[str], worker_id: str, now: datetime) -> list[TaskView]:
        started = (self.start_task(task_id, worker_id, now) for task_id in dict.fromkeys(task_ids))
        return [task for task in started if task is not None]

    def finish_tasks(
        self, worker_id: str, outcomes: Mapping[str, TaskOutcome], now: datetime
    ) -> list[str]:
        recorded: list[str] = []
        with _errors("finish_tasks"):
            for task_id, outcome in outcomes.items():
                fields = _to_doc(records.outcome_fields(worker_id, outcome, now), ("finished_at",))
                result = self._tasks.update_one(
                    {
                        "_id": task_id,
                        "status": {"$in": list(records.UNFINISHED)},
                        "worker_id": worker_id,
                    },
                    {"$set": fields},
                )
                if result.matched_count == 1:
                    recorded.append(task_id)
        return recorded

    def requeue_running(
        self, worker_id: str, keep: Sequence[str] = (), started_before: datetime | None = None
    ) -> list[tuple[str, str]]:
        query: dict[str, Any] = {"worker_id": worker_id, "status": TaskStatus.running.value}
        if started_before is not None:
            query["started_at"] = {"$lt": _to_bson_date(started_before)}
        kept = set(keep)
        requeued: list[tuple[str, str]] = []
        with _errors("requeue_running"):
            candidates = list(self._tasks.find(query, {"queue": 1}).sort("_id", _ASC))
            # One conditional update per task (a worker runs a handful at a time) so a task
            # that finished in between is neither requeued nor reported.
            for doc in candidates:
                if doc["_id"] in kept:
                    continue
                result = self._tasks.update_one(
                    {"_id": doc["_id"], **query}, {"$set": {"status": TaskStatus.queued.value}}
                )
                if result.matched_count == 1:
                    requeued.append((doc["_id"], doc["queue"]))
        return requeued

    def queued_tasks(self, queue: str, created_before: datetime, limit: int) -> list[str]:
        if limit <= 0:
            return []
        query = {
            "queue": queue,
            "status": TaskStatus.queued.value,
            "created_at": {"$lt": _to_bson_date(created_before)},
        }
        with _errors("queued_tasks"):
            docs = list(self._tasks.find(query, {"_id": 1}).sort("_id", _ASC).limit(limit))
        return [str(doc["_id"]) for doc in docs]

    def throughput(self, since: datetime, bucket_seconds: int) -> list[ThroughputBucket]:
        bucket_ms = max(bucket_seconds, 1) * 1000
        millis = {"$subtract": ["$finished_at", _EPOCH]}  # date - date = milliseconds
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "status": {"$in": list(records.FINISHED)},
                    "finished_at": {"$gte": _to_bson_date(since)},
                }
            },
            {
                "$group": {
                    "_id": {"$subtract": [millis, {"$mod": [millis, bucket_ms]}]},
                    "succeeded": {"$sum": _count_if("succeeded")},
                    "failed": {"$sum": _count_if("failed")},
                }
            },
            {"$sort": {"_id": 1}},
        ]
        with _errors("throughput"):
            groups = list(self._tasks.aggregate(pipeline))
        return [
            ThroughputBucket(
                start=records.from_millis(int(group["_id"])),
                succeeded=int(group["succeeded"]),
                failed=int(group["failed"]),
            )
            for group in groups
        ]

    # --- workers -----------------------------------------------------------------------
    def create_worker(self, worker: WorkerRecord) -> None:
        doc = _to_doc(records.worker_fields(worker), records.WORKER_DATETIME_FIELDS)
        with _errors("create_worker"):
            self._workers.insert_one(doc)

    def get_worker(self, worker_id: str) -> WorkerRecord | None:
        with _errors("get_worker"):
            doc = self._workers.find_one({"_id": worker_id})
        return None if doc is None else _worker_record(doc)

    def list_workers(self) -> list[WorkerRecord]:
        with _errors("list_workers"):
            docs = list(self._workers.find().sort([("registered_at", _DESC), ("_id", _DESC)]))
        return [_worker_record(doc) for doc in docs]

    def record_heartbeat(self, worker_id: str, now: datetime, beat: Heartbeat) -> None:
        fields = records.heartbeat_fields(now, beat)
        with _errors("record_heartbeat"):
            self._workers.update_one(
                {"_id": worker_id},
                {"$set": _to_doc(fields, records.WORKER_DATETIME_FIELDS)},
            )


def _count_if(status: str) -> dict[str, Any]:
    return {"$cond": [{"$eq": ["$status", status]}, 1, 0]}
