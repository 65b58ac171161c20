"""Turning a file of items (JSONL, CSV, one value a line) into task `data` values.

Shared by the `dts` CLI (validates a file before sending it) and the control plane's
upload endpoint, so both accept exactly the same files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from task_contract.json_values import JsonValueError, check_json_value

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
    csv: a header row, then one object per row (quoted fields may span lines);
    lines: each non-blank line as {field: line}. Blank lines are skipped in every format.
    Every value is checked to be storable (see task_contract.json_values).
    """
    if fmt == "jsonl":
        yield from _jsonl(lines, field)
    elif fmt == "csv":
        yield from _csv(lines)
    elif fmt == "lines":
        for number, line in enumerate(lines, start=1):
            value = line.strip()
            if value:
                yield _checked({field: value}, number)
    else:
        raise ValueError(f"unknown format '{fmt}' (use one of {', '.join(FORMATS)})")


def _checked(value: Any, line: int) -> Any:
    try:
        check_json_value(value, "item")
    except JsonValueError as exc:
        raise ItemFormatError(line, str(exc)) from None
    return value


def _jsonl(lines: Iterable[str], field: str) -> Iterator[Any]:
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            message = f"not valid JSON ({exc.msg} at column {exc.colno})"
            raise ItemFormatError(number, message) from exc
        except (ValueError, RecursionError) as exc:  # huge integers, absurd nesting
            raise ItemFormatError(number, f"not usable JSON ({exc})"[:300]) from None
        if isinstance(value, dict):
            yield _checked(value, number)
        elif isinstance(value, list):
            raise ItemFormatError(number, "a JSON array is not an item; put one item per line")
        elif value is None:
            raise ItemFormatError(number, "null is not an item")
        else:
            yield _checked({field: value}, number)


def _csv(lines: Iterable[str]) -> Iterator[Any]:
    # The csv module splits records itself, so quoted fields keep their line breaks.
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        if not all(names):
            column = names.index("") + 1
            raise ItemFormatError(1, f"CSV header has an empty column name (column {column})")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ItemFormatError(1, f"CSV header repeats column names: {', '.join(dupes)}")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(names):
                relation = "more" if len(row) > len(names) else "fewer"
                raise ItemFormatError(
                    line, f"{relation} values ({len(row)}) than header columns ({len(names)})"
                )
            yield _checked(dict(zip(names, row, strict=True)), line)
    except csv.Error as exc:
        raise ItemFormatError(reader.line_num, f"not valid CSV ({exc})") from None
