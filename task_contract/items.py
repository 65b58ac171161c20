"""Turning a file of items (JSONL, CSV, one value a line) into task `data` values.

Shared by the `dts` CLI (validates a file before sending it) and the control plane's
upload endpoint, so both accept exactly the same files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

ItemFormat = Literal["jsonl", "csv", "lines"]
FORMATS: tuple[ItemFormat, ...] = ("jsonl", "csv", "lines")


class ItemFormatError(ValueError):
    """Raised for a line that cannot become an item; says which line and why."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def guess_format(filename: str) -> ItemFormat:
    lowered = filename.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    return "lines"


def parse_items(lines: Iterable[str], fmt: ItemFormat, field: str) -> Iterator[Any]:
    """Yield one `data` value per item.

    jsonl: each line a JSON object (used as is) or a scalar (wrapped as {field: value});
    csv: a header row, then one object per row; lines: each non-blank line as {field: line}.
    Blank lines are skipped in every format.
    """
    if fmt == "jsonl":
        yield from _jsonl(lines, field)
    elif fmt == "csv":
        yield from _csv(lines)
    elif fmt == "lines":
        for line in lines:
            value = line.strip()
            if value:
                yield {field: value}
    else:
        raise ValueError(f"unknown format '{fmt}' (use one of {', '.join(FORMATS)})")


def _jsonl(lines: Iterable[str], field: str) -> Iterator[Any]:
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ItemFormatError(
                number, f"not valid JSON ({exc.msg} at column {exc.colno})"
            ) from exc
        if isinstance(value, dict):
            yield value
        elif isinstance(value, list):
            raise ItemFormatError(number, "a JSON array is not an item; put one item per line")
        elif value is None:
            raise ItemFormatError(number, "null is not an item")
        else:
            yield {field: value}


def _csv(lines: Iterable[str]) -> Iterator[Any]:
    reader = csv.DictReader(line.rstrip("\r\n") for line in lines)
    if not reader.fieldnames:
        return
    blank = [i for i, name in enumerate(reader.fieldnames, start=1) if not (name or "").strip()]
    if blank:
        raise ItemFormatError(1, f"CSV header has an empty column name (column {blank[0]})")
    for row in reader:
        if None in row:
            raise ItemFormatError(reader.line_num, "more values than header columns")
        if all(v in ("", None) for v in row.values()):
            continue
        yield {k: v for k, v in row.items()}
