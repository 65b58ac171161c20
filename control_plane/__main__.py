"""`python -m control_plane`: start the API server on API_HOST:API_PORT."""

from __future__ import annotations

import argparse

from control_plane.config import Settings
from control_plane.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m control_plane",
        description="Start the control plane API server. Configuration comes from the "
        "environment and a .env file (REDIS_HOST, MONGO_URI, API_HOST, API_PORT, DTS_*; "
        "see the README); the flags below override it.",
    )
    parser.add_argument("--host", help="listen address (API_HOST, default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (API_PORT, default 8000)")
    args = parser.parse_args(argv)
    overrides = {"API_HOST": args.host, "API_PORT": args.port}
    serve(Settings(**{k: v for k, v in overrides.items() if v is not None}))


if __name__ == "__main__":
    main()
