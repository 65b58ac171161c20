"""`dts submit FILE`: check every line first, then send the items in chunks with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from control_plane.cli.api_client import AdminClient, CliError
from task_contract.items import ItemFormat, ItemFormatError, guess_format, parse_items

CHUNK = 5000
"""Items per request: large enough to amortise HTTP, small enough for a smooth progress bar."""


def parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--param '{pair}': use NAME=VALUE")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


def count_items(path: Path, fmt: ItemFormat, field: str) -> int:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return sum(1 for _ in parse_items(handle, fmt, field))
    except ItemFormatError as exc:
        raise CliError(f"{path}:{exc.line}: {exc.message}; nothing was submitted") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text ({exc.reason}); nothing was submitted") from exc
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc


def submit_file(
    client: AdminClient,
    path: Path,
    plugin_id: str,
    task_type: str,
    fmt: ItemFormat | None,
    field: str | None,
    params: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    fmt = fmt or guess_format(path.name)
    field = field or task_type
    total = count_items(path, fmt, field)
    if total == 0:
        raise CliError(f"{path} holds no items")
    # Check plugin and parameters once before sending anything.
    client.request("GET", f"/api/plugins/{plugin_id}")
    accepted = 0
    batches: list[str] = []
    columns = (TextColumn("submitting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with (
        Progress(*columns, console=console, transient=False) as progress,
        path.open(encoding="utf-8", newline="") as handle,
    ):
        bar = progress.add_task("submit", total=total)
        chunk: list[Any] = []
        for item in parse_items(handle, fmt, field):
            chunk.append(item)
            if len(chunk) == CHUNK:
                accepted += _send(client, plugin_id, task_type, params, chunk, batches)
                progress.update(bar, completed=accepted)
                chunk = []
        if chunk:
            accepted += _send(client, plugin_id, task_type, params, chunk, batches)
            progress.update(bar, completed=accepted)
    return {"accepted": accepted, "batches": batches, "plugin_id": plugin_id}


def _send(
    client: AdminClient,
    plugin_id: str,
    task_type: str,
    params: dict[str, Any],
    chunk: list[Any],
    batches: list[str],
) -> int:
    reply = client.request(
        "POST",
        "/api/tasks/bulk",
        json={
            "type": task_type,
            "plugin_id": plugin_id,
            "plugin_parameters": params,
            "items": chunk,
        },
    )
    batches.append(reply["batch_id"])
    return int(reply["accepted"])
