"""The batch contract's files: writing `/input/items.jsonl`, judging `/output/results.jsonl`.

A batch run ends in one outcome per task:
- a `{"id", "result"}` line: succeeded;
- a `{"id", "error"}` line: that item failed (kind `item_error`), the others are untouched;
- no line, container exited 0: failed, `no_result`;
- no line, container broke (non-zero exit, timeout, out of memory): failed with that kind,
  while items that already have a line keep it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from task_contract.api import FailureKind, TaskAssignment, TaskOutcome
from task_contract.json_values import JsonValueError, check_json_value

log = logging.getLogger(__name__)

ITEMS_FILE = "items.jsonl"
RESULTS_FILE = "results.jsonl"
ERROR_LIMIT = 4000  # TaskOutcome.error's max_length


@dataclass(frozen=True)
class BatchRun:
    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    logs: str | None
    last_stderr_line: str
    duration_seconds: float
    results: bytes | None
    """Raw results.jsonl, None when the plugin wrote none."""
    results_problem: str | None = None
    """Why results.jsonl could not be read safely (symlink, FIFO, too large)."""


def write_batch_inputs(input_dir: Path, assignments: list[TaskAssignment]) -> None:
    items = input_dir / ITEMS_FILE
    with items.open("w", encoding="utf-8") as handle:
        for a in assignments:
            line = {"id": a.task_id, "type": a.type, "data": a.data}
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    items.chmod(0o644)
    params = input_dir / "parameters.json"
    params.write_text(json.dumps(assignments[0].parameters, ensure_ascii=False), encoding="utf-8")
    params.chmod(0o644)


def parse_results(raw: bytes, wanted: set[str]) -> tuple[dict[str, dict[str, Any]], int]:
    """Lines for wanted ids (first line per id wins) and how many lines were unusable."""
    found: dict[str, dict[str, Any]] = {}
    unusable = 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            unusable += 1
            continue
        task_id = record.get("id") if isinstance(record, dict) else None
        if task_id not in wanted or ("result" not in record and "error" not in record):
            unusable += 1
            continue
        if task_id in found:
            continue
        try:
            check_json_value(record.get("result"), "result")
            check_json_value(record.get("error"), "error")
        except JsonValueError as exc:
            record = {"id": task_id, "error": f"its result cannot be stored ({exc})"}
        found[task_id] = record
    return found, unusable


def judge_batch(
    assignments: list[TaskAssignment], run: BatchRun, timeout_seconds: float, memory_mb: int
) -> dict[str, TaskOutcome]:
    wanted = {a.task_id for a in assignments}
    found, unusable = ({}, 0) if run.results is None else parse_results(run.results, wanted)
    if unusable:
        log.warning("batch of %d: %d unusable line(s) in %s", len(wanted), unusable, RESULTS_FILE)
    share = round(run.duration_seconds / max(len(assignments), 1), 3)
    missing_kind, missing_message = _missing_reason(run, timeout_seconds, memory_mb, unusable)
    outcomes: dict[str, TaskOutcome] = {}
    for a in assignments:
        common: dict[str, Any] = {
            "exit_code": run.exit_code,
            "duration_seconds": share,
            "attempt": a.attempt,
        }
        record = found.get(a.task_id)
        if record is not None and "error" not in record:
            outcomes[a.task_id] = TaskOutcome(succeeded=True, result=record["result"], **common)
        elif record is not None:
            message = f"plugin reported an error for this item: {record['error']}"
            if not isinstance(record["error"], str):
                message = f"plugin reported an error for this item: {json.dumps(record['error'])}"
            outcomes[a.task_id] = TaskOutcome(
                succeeded=False,
                failure_kind=FailureKind.item_error,
                error=message[:ERROR_LIMIT],
                **common,
            )
        else:
            outcomes[a.task_id] = TaskOutcome(
                succeeded=False,
                failure_kind=missing_kind,
                error=missing_message[:ERROR_LIMIT],
                stderr=run.logs,
                **common,
            )
    return outcomes


def _missing_reason(
    run: BatchRun, timeout_seconds: float, memory_mb: int, unusable: int
) -> tuple[FailureKind, str]:
    """Why an item has no line: the container's failure, or the plugin skipped it."""
    if run.timed_out:
        return FailureKind.timeout, (
            f"batch run exceeded its {timeout_seconds:g} s timeout before this item had a "
            "result; raise batch.timeout_seconds or lower batch.max_items in the manifest"
        )
    if run.oom_killed:
        return FailureKind.out_of_memory, (
            f"batch run ran out of memory (limit {memory_mb} MiB) before this item had a "
            "result; raise limits.memory_mb or lower batch.max_items in the manifest"
        )
    if run.exit_code not in (0, None):
        detail = f": {run.last_stderr_line}" if run.last_stderr_line else " (nothing on stderr)"
        return FailureKind.exit_nonzero, (
            f"batch run exited with code {run.exit_code} before this item had a result{detail}"
        )
    if run.results_problem:
        return FailureKind.invalid_result, run.results_problem
    if run.results is None:
        return FailureKind.no_result, f"plugin exited 0 but wrote no /output/{RESULTS_FILE}"
    bad = f" ({unusable} line(s) were not valid result lines)" if unusable else ""
    return FailureKind.no_result, (
        f"plugin exited 0 but wrote no line for this item in /output/{RESULTS_FILE}{bad}"
    )


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are Python extensions, not JSON: the control plane could not store them.
    raise ValueError(f"{name} is not allowed in JSON")
