"""What one task is, in both modes: the parameters, the rule set they select, the result."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from domain_analysis import BadInputError, analyse, domain_from_input
from psl import SuffixRules

LIST_FILE = Path(__file__).resolve().with_name("public_suffix_list.dat")

# Values of the `suffix_rules` parameter (declared in manifest.json, default "all"):
# "icann" ignores the PRIVATE section (herokuapp.com, github.io, ...).
SUFFIX_RULE_SETS = ("all", "icann")
DEFAULT_SUFFIX_RULES = "all"


@functools.cache
def load_rules(suffix_rules: str) -> SuffixRules:
    """The parsed list for one rule set, parsed once per process (so once per batch run)."""
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


def result_for(data: object, suffix_rules: str) -> dict[str, Any]:
    """The result for one task's data under validated parameters; BadInputError if bad."""
    result = analyse(domain_from_input(data), load_rules(suffix_rules))
    result["suffix_rules"] = suffix_rules
    return result


def process(data: object, parameters: object) -> dict[str, Any]:
    """The result for one task; raises BadInputError when input or parameters are wrong."""
    return result_for(data, suffix_rules_from(parameters))
