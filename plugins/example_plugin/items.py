"""One line of items.jsonl, parsed into an item or the reason it cannot be attributed."""

from __future__ import annotations

import json
from dataclasses import dataclass

# Lines are quoted in warnings at most this long: the agent keeps only so much stderr.
_PREVIEW = 60


@dataclass(frozen=True)
class Item:
    id: str
    data: object  # the task's data, checked later like v1's input.json (None if missing)


def parse_item(line: bytes) -> Item | str:
    """The item on `line`, or why no result line can be written for it."""
    if not line.strip():
        return "is empty"
    try:
        value = json.loads(line.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"is not valid JSON ({exc}): {_preview(line)}"
    if not isinstance(value, dict):
        return f"is not a JSON object: {_preview(line)}"
    item_id = value.get("id")
    if not isinstance(item_id, str) or not item_id:
        return f'has no "id" string: {_preview(line)}'
    return Item(id=item_id, data=value.get("data"))


def _preview(line: bytes) -> str:
    text = line.decode("utf-8", "replace").strip()
    return repr(text) if len(text) <= _PREVIEW else repr(text[:_PREVIEW]) + "..."
