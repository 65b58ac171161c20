"""`dts status` and `dts wait`: counts per status, workers, and a progress bar until done."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from control_plane.cli.api_client import AdminClient


def show_status(client: AdminClient, console: Console, params: dict[str, Any]) -> None:
    counts = client.request("GET", "/api/tasks/counts", params=params)
    table = Table(title="tasks")
    for status in counts:
        table.add_column(status, justify="right")
    table.add_row(*(str(v) for v in counts.values()))
    console.print(table)
    workers = client.request("GET", "/api/workers")
    wtable = Table(title="agents")
    for column in ("id", "name", "state", "running", "last heartbeat"):
        wtable.add_column(column)
    for w in workers:
        wtable.add_row(
            w["id"], w["name"], w["state"], str(len(w["running_tasks"])), str(w["last_heartbeat"])
        )
    console.print(wtable)


def show_task(client: AdminClient, console: Console, task_id: str) -> None:
    console.print_json(data=client.request("GET", f"/api/tasks/{task_id}"))


def wait_until_done(
    client: AdminClient,
    console: Console,
    params: dict[str, Any],
    timeout: float | None,
    interval: float = 1.0,
) -> dict[str, int]:
    """Poll counts until nothing is queued or running; returns the final counts."""
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (
        TextColumn("processing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[ok]} ok [red]{task.fields[bad]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("wait", total=None, ok=0, bad=0)
        while True:
            counts: dict[str, int] = client.request("GET", "/api/tasks/counts", params=params)
            done = counts["succeeded"] + counts["failed"]
            progress.update(
                bar,
                total=sum(counts.values()),
                completed=done,
                ok=counts["succeeded"],
                bad=counts["failed"],
            )
            if counts["queued"] + counts["running"] == 0:
                return counts
            if deadline is not None and time.monotonic() > deadline:
                return counts
            time.sleep(interval)
