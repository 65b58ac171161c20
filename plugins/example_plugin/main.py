"""Example plugin: offline domain facts under the v1 plugin contract.

Reads `{"domain": "..."}` from /input/input.json and the parameters from
/input/parameters.json, writes /output/result.json. Exit codes: 0 success,
2 bad input or parameters (message on stderr, no result written), 1 anything else.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

from domain_analysis import BadInputError, analyse, domain_from_input
from psl import SuffixRules

INPUT_FILE = Path("/input/input.json")
PARAMETERS_FILE = Path("/input/parameters.json")
RESULT_FILE = Path("/output/result.json")
LIST_FILE = Path(__file__).resolve().with_name("public_suffix_list.dat")

EXIT_OK = 0
EXIT_BAD_INPUT = 2

# Values of the `suffix_rules` parameter (declared in manifest.json, default "all"):
# "icann" ignores the PRIVATE section (herokuapp.com, github.io, ...).
SUFFIX_RULE_SETS = ("all", "icann")
DEFAULT_SUFFIX_RULES = "all"


@functools.cache
def load_rules(suffix_rules: str) -> SuffixRules:
    """The parsed list for one rule set, parsed once per process."""
    return SuffixRules.from_file(LIST_FILE, include_private=suffix_rules == "all")


def suffix_rules_from(parameters: object) -> str:
    """The validated `suffix_rules` value; other keys are ignored (with a warning)."""
    if not isinstance(parameters, dict):
        raise BadInputError("parameters must be a JSON object")
    for name in sorted(set(parameters) - {"suffix_rules"}):
        print(f"warning: ignoring unknown parameter {name!r}", file=sys.stderr)
    value = parameters.get("suffix_rules", DEFAULT_SUFFIX_RULES)
    if value not in SUFFIX_RULE_SETS:
        allowed = " or ".join(repr(v) for v in SUFFIX_RULE_SETS)
        raise BadInputError(f"parameter suffix_rules must be {allowed}, got {value!r}")
    return str(value)


def process(data: object, parameters: object) -> dict[str, Any]:
    """The result for one task; raises BadInputError when input or parameters are wrong."""
    suffix_rules = suffix_rules_from(parameters)
    result = analyse(domain_from_input(data), load_rules(suffix_rules))
    result["suffix_rules"] = suffix_rules
    return result


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


def write_json(path: Path, value: object) -> None:
    """Write via a temporary file so a reader never sees half a result."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def main() -> int:
    try:
        data = read_json(INPUT_FILE)
        # Hand-run containers may omit parameters.json; the agent always writes one.
        parameters = read_json(PARAMETERS_FILE) if PARAMETERS_FILE.exists() else {}
        result = process(data, parameters)
    except BadInputError as exc:
        print(f"example-plugin: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    write_json(RESULT_FILE, result)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
