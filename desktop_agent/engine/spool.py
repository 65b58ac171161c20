"""Outcomes not yet delivered to the control plane, kept on disk until they are.

Written before the first delivery attempt, so an agent killed while the control plane
is down still delivers the outcome after its restart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from task_contract.api import TaskOutcome


class ResultSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def put(self, task_id: str, outcome: TaskOutcome) -> None:
        path = self._path(task_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(outcome.model_dump_json())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def pending(self) -> list[tuple[str, TaskOutcome]]:
        items = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue  # delivered and removed by another thread meanwhile
            try:
                items.append((path.stem, TaskOutcome.model_validate(json.loads(text))))
            except ValueError:
                path.replace(path.with_suffix(".corrupt"))
        return items

    def remove(self, task_id: str) -> None:
        self._path(task_id).unlink(missing_ok=True)

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*.json"))

    def _path(self, task_id: str) -> Path:
        if not task_id.isalnum():
            raise ValueError(f"unexpected task id {task_id!r}")
        return self.directory / f"{task_id}.json"
