"""`python -m control_plane`: start the API server on API_HOST:API_PORT."""

from __future__ import annotations

from control_plane.config import Settings
from control_plane.server import serve


def main() -> None:
    serve(Settings())


if __name__ == "__main__":
    main()
