"""A flat CSV: scalar columns, with data, parameters and result as JSON text."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from task_contract.api import TaskView

COLUMNS = [
    "id",
    "type",
    "plugin_id",
    "plugin_version",
    "queue",
    "status",
    "attempts",
    "worker_id",
    "created_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "failure_kind",
    "exit_code",
    "error",
    "data",
    "parameters",
    "result",
]


def render(tasks: Iterable[TaskView]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for task in tasks:
        row = task.model_dump(mode="json")
        writer.writerow([_cell(column, row.get(column)) for column in COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield _drain(buffer)
    yield _drain(buffer)


def _cell(column: str, value: object) -> object:
    if column in ("data", "parameters", "result"):
        return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
