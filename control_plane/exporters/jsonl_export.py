"""One JSON object per task and line: the full record, results included."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from task_contract.api import TaskView


def render(tasks: Iterable[TaskView]) -> Iterator[str]:
    for task in tasks:
        yield task.model_dump_json() + "\n"
