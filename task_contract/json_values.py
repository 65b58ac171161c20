"""What a stored JSON value may be: finite numbers, 64-bit integers, UTF-8 text, bounded depth.

Python's json module accepts more than every store and client can hold (NaN, 1e999, lone
surrogates, integers of any size, any nesting), so values are checked at the edges: the
API refuses them with a 422, the agent turns such a plugin result into `invalid_result`.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting accepted: well past real data, far below what serializers refuse (255)."""

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""MongoDB stores at most 64-bit integers."""


class JsonValueError(ValueError):
    """Raised with the path of the first value that cannot be stored, e.g. `data.a[3]`."""

    def __init__(self, path: str, message: str) -> None:
        shown = path if len(path) <= 120 else path[:60] + "..." + path[-40:]
        super().__init__(f"{shown}: {message}")
        self.path = path
        self.message = message


def check_json_value(value: Any, path: str) -> None:
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise JsonValueError(where, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise JsonValueError(where, "object keys must be strings")
                _check_text(key, where)
                stack.append((child, f"{where}.{key}", depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise JsonValueError(where, "integer outside the 64-bit range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JsonValueError(where, f"{item} is not a JSON number")
        else:
            raise JsonValueError(where, f"{type(item).__name__} is not a JSON value")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonValueError(where, "text contains an unpaired surrogate (not UTF-8)") from None
    if "\x00" in text:
        raise JsonValueError(where, "text contains a NUL character")
