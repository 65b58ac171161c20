"""One JSON object per task and line: the full record, results included."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from task_contract.api import TaskView

CHUNK_BYTES = 64 * 1024
"""Bytes per yielded piece: one line per piece costs a thread hop and an HTTP chunk each."""


def render(tasks: Iterable[TaskView]) -> Iterator[str]:
    lines: list[str] = []
    size = 0
    for task in tasks:
        line = task.model_dump_json() + "\n"
        lines.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield "".join(lines)
            lines, size = [], 0
    if lines:
        yield "".join(lines)
