"""`dts export`: stream results to a JSONL or CSV file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from control_plane.cli.api_client import AdminClient


def export_to(client: AdminClient, path: Path, fmt: str, params: dict[str, Any]) -> int:
    """Write the export to `path` (atomically) and return the number of records."""
    tmp = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as handle:
        for chunk in client.stream("/api/tasks/export", params={**params, "format": fmt}):
            handle.write(chunk)
    tmp.replace(path)
    with path.open(encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            return sum(1 for _ in csv.reader(handle)) - 1
        return sum(1 for line in handle if line.strip())
