"""Example plugin: offline domain facts. The container's entrypoint.

Two contracts, chosen by what the agent put in /input:
- /input/items.jsonl present: batch mode, many tasks in one run (batch.py);
- otherwise the v1 single-task contract: /input/input.json -> /output/result.json (single.py).
"""

from __future__ import annotations

import sys

import batch
import single
from domain_analysis import BadInputError
from task import process

__all__ = ["BadInputError", "main", "process"]


def main() -> int:
    if batch.ITEMS_FILE.exists():
        return batch.run()
    return single.run()


if __name__ == "__main__":
    sys.exit(main())
