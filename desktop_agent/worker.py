"""`python -m desktop_agent.worker`: the headless agent (the seed's `worker.worker`).

python -m desktop_agent.worker --server localhost:8000 --workers 4 [--queues q1,q2]
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pydantic import ValidationError

from desktop_agent.engine.agent import Agent, AgentError
from desktop_agent.engine.settings import AgentSettings


def parse_args(argv: list[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m desktop_agent.worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--server", help="control plane HOST:PORT or URL (default localhost:8000)")
    parser.add_argument("--workers", type=int, help="tasks run at once (default 1)")
    parser.add_argument(
        "--queues", help="comma-separated queues to consume (default: all plugins')"
    )
    parser.add_argument("--cpus", type=float, help="CPU limit per plugin container, e.g. 0.5")
    parser.add_argument(
        "--memory-mb", type=int, help="memory limit per container when the plugin sets none"
    )
    parser.add_argument("--name", help="name shown in the dashboard (default: hostname)")
    parser.add_argument(
        "--data-dir", help="state directory (default: the platform's user data dir)"
    )
    parser.add_argument("--enrollment-token", help="enrollment token (or DTS_ENROLLMENT_TOKEN)")
    parser.add_argument("--log-level", help="debug, info, warning (default info)")
    args = vars(parser.parse_args(argv))
    if args.get("queues"):
        args["queues"] = [q.strip() for q in args["queues"].split(",") if q.strip()]
    if args.get("enrollment_token"):
        args["DTS_ENROLLMENT_TOKEN"] = args.pop("enrollment_token")
    return {k: v for k, v in args.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    try:
        settings = AgentSettings(**parse_args(argv))
    except ValidationError as exc:
        for error in exc.errors():
            name = "--" + "-".join(str(p) for p in error["loc"]).replace("_", "-")
            print(f"error: {name}: {error['msg']}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per heartbeat and report would drown what matters in the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        Agent(settings).run()
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
