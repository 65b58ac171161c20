"""Reading the JSON files the agent writes and writing the plugin's own."""

from __future__ import annotations

import json
import os
from pathlib import Path

from domain_analysis import BadInputError


def read_json(path: Path) -> object:
    """Parse a JSON file the agent wrote; any problem is the task's input being bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"{path} does not exist") from None
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadInputError(f"{path} is not valid JSON: {exc}") from exc


def read_parameters(path: Path) -> object:
    """The parameters; hand-run containers may omit the file (the agent always writes one)."""
    return read_json(path) if path.exists() else {}


def write_json(path: Path, value: object) -> None:
    """Write via a temporary file so a reader never sees half a result."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def json_line(value: object) -> bytes:
    """One JSON Lines record, UTF-8; escaped ASCII if the value holds a lone surrogate."""
    try:
        return (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(value) + "\n").encode("ascii")
