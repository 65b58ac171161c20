"""Single mode, the v1 contract: one task per container.

Reads `{"domain": "..."}` from /input/input.json and the parameters from
/input/parameters.json, writes /output/result.json. Exit codes: 0 success,
2 bad input or parameters (message on stderr, no result written), 1 anything else.
"""

from __future__ import annotations

import sys
from pathlib import Path

from domain_analysis import BadInputError
from jsonio import read_json, read_parameters, write_json
from task import process

INPUT_FILE = Path("/input/input.json")
PARAMETERS_FILE = Path("/input/parameters.json")
RESULT_FILE = Path("/output/result.json")

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def run(
    input_file: Path = INPUT_FILE,
    parameters_file: Path = PARAMETERS_FILE,
    result_file: Path = RESULT_FILE,
) -> int:
    try:
        data = read_json(input_file)
        result = process(data, read_parameters(parameters_file))
    except BadInputError as exc:
        print(f"example-plugin: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    write_json(result_file, result)
    return EXIT_OK
