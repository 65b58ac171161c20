"""Batch mode: many tasks of one run in one container (opt-in: manifest `"batch"`).

/input/items.jsonl holds one `{"id": ..., "type": ..., "data": ...}` object per line and
/input/parameters.json the parameters shared by all of them. Every item gets one line in
/output/results.jsonl, `{"id": ..., "result": ...}` or `{"id": ..., "error": ...}`,
written and flushed as soon as it is done, so a crash keeps what was finished.

Exit codes: 0 the run was processed (some items may have error lines); 2 bad parameters
(message on stderr, no results written); 1 the run broke (traceback on stderr).
The list is parsed once for the whole run (`task.load_rules` is cached).
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from domain_analysis import BadInputError
from items import parse_item
from jsonio import json_line, read_parameters
from task import load_rules, result_for, suffix_rules_from

ITEMS_FILE = Path("/input/items.jsonl")
PARAMETERS_FILE = Path("/input/parameters.json")
RESULTS_FILE = Path("/output/results.jsonl")

EXIT_OK = 0
EXIT_BAD_PARAMETERS = 2


@dataclass
class Tally:
    results: int = 0
    errors: int = 0
    skipped: int = 0

    def summary(self) -> str:
        items = self.results + self.errors
        return (
            f"example-plugin: batch done: {items} items, {self.results} results, "
            f"{self.errors} errors; skipped lines: {self.skipped}"
        )


def run(
    items_file: Path = ITEMS_FILE,
    parameters_file: Path = PARAMETERS_FILE,
    results_file: Path = RESULTS_FILE,
) -> int:
    try:
        suffix_rules = suffix_rules_from(read_parameters(parameters_file))
    except BadInputError as exc:
        print(f"example-plugin: bad parameters: {exc}", file=sys.stderr)
        return EXIT_BAD_PARAMETERS
    load_rules(suffix_rules)  # parse the list before the first item, once
    tally = Tally()
    with items_file.open("rb") as items, results_file.open("wb") as results:
        _process_lines(items, results, suffix_rules, tally)
    print(tally.summary(), file=sys.stderr)
    return EXIT_OK


def _process_lines(items: BinaryIO, results: BinaryIO, suffix_rules: str, tally: Tally) -> None:
    seen: set[str] = set()
    for number, line in enumerate(items, start=1):
        item = parse_item(line)
        if isinstance(item, str):
            _skip(number, item, tally)
            continue
        if item.id in seen:
            _skip(number, f"repeats id {item.id!r} (only its first line is processed)", tally)
            continue
        seen.add(item.id)
        results.write(json_line(_outcome(item.id, item.data, suffix_rules, tally)))
        results.flush()


def _outcome(item_id: str, data: object, suffix_rules: str, tally: Tally) -> dict[str, object]:
    """The results.jsonl record for one item; its failure never stops the run."""
    try:
        result = result_for(data, suffix_rules)
    except BadInputError as exc:
        tally.errors += 1
        return {"id": item_id, "error": str(exc)}
    except Exception as exc:  # a bug for this input only: fail the item, keep the run going
        print(f"example-plugin: item {item_id!r} failed unexpectedly:", file=sys.stderr)
        traceback.print_exc()
        tally.errors += 1
        return {"id": item_id, "error": f"unexpected error: {type(exc).__name__}: {exc}"}
    tally.results += 1
    return {"id": item_id, "result": result}


def _skip(number: int, reason: str, tally: Tally) -> None:
    tally.skipped += 1
    print(f"warning: {ITEMS_FILE.name} line {number} {reason}; skipped", file=sys.stderr)
