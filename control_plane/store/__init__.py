"""The control plane's source of truth: MongoDB when configured, a SQLite file otherwise."""

from __future__ import annotations

import re
from pathlib import Path

from control_plane.store.base import (
    NewTask,
    PluginRecord,
    Store,
    StoreError,
    TaskFilter,
    ThroughputBucket,
    WorkerRecord,
)

__all__ = [
    "NewTask",
    "PluginRecord",
    "Store",
    "StoreError",
    "TaskFilter",
    "ThroughputBucket",
    "WorkerRecord",
    "open_store",
    "redact_uri",
]

# scheme://user:password@host -> scheme://user:***@host (the password cannot contain an
# unescaped '@' or '/', so the first of them ends it).
_PASSWORD_RE = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:@/]*):[^@/]*@")


def redact_uri(uri: str) -> str:
    """`uri` safe to log or show: the password, if any, replaced by ***."""
    return _PASSWORD_RE.sub(r"\g<head>:***@", uri)


def open_store(
    mongo_uri: str | None,
    mongo_db_name: str,
    sqlite_path: Path,
    *,
    server_selection_timeout_ms: int = 5000,
) -> Store:
    """MongoStore when `mongo_uri` is given (and reachable), SqliteStore at `sqlite_path` else.

    Raises StoreError when the chosen backend cannot be opened.
    """
    if mongo_uri:
        return _open_mongo(mongo_uri, mongo_db_name, server_selection_timeout_ms)
    from control_plane.store.sqlite import SqliteStore

    return SqliteStore(sqlite_path)


def _open_mongo(uri: str, db_name: str, timeout_ms: int) -> Store:
    # Imported here so SQLite-only installs need neither pymongo nor its import time.
    import pymongo
    from pymongo.errors import PyMongoError

    from control_plane.store.mongo import MongoStore

    try:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms
        )
    except PyMongoError as exc:  # malformed URI, unknown option
        raise StoreError(f"invalid MongoDB URI {redact_uri(uri)}: {exc}") from exc
    try:
        # The client connects lazily; ping now so a wrong URI fails at startup, not on
        # the first request.
        client.admin.command("ping")
    except PyMongoError as exc:
        client.close()
        raise StoreError(f"cannot reach MongoDB at {redact_uri(uri)}: {exc}") from exc
    try:
        return MongoStore(client, db_name)
    except StoreError:
        client.close()
        raise
