"""Result exporters: stream tasks from the store as JSONL or CSV without loading them all."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from control_plane.exporters import csv_export, jsonl_export
from task_contract.api import TaskView

Exporter = Callable[[Iterable[TaskView]], Iterator[str]]

EXPORTERS: dict[str, tuple[Exporter, str]] = {
    "jsonl": (jsonl_export.render, "application/x-ndjson"),
    "csv": (csv_export.render, "text/csv"),
}
