"""Helpers the benchmarks share: real-looking items, the example plugin, /proc memory, tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from control_plane import defaults
from tests.support.processes import REPO

MANIFEST_PATH = REPO / "plugins" / "example_plugin" / "manifest.json"
MANIFEST: dict[str, Any] = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
PLUGIN_ID: str = MANIFEST["id"]
PLUGIN_QUEUE: str = MANIFEST["queue"]
PLUGIN_IMAGE: str = MANIFEST["docker_image"]
BASE_IMAGE = os.environ.get("DTS_BASE_IMAGE", "dts-python-base:bookworm")

PRODUCTION_TIMERS = {
    # tests.support.processes.ControlPlane shortens these for fast tests; a benchmark should
    # see the background work (recovery passes, heartbeats) at the rate a real install does.
    "DTS_HEARTBEAT_INTERVAL": str(defaults.HEARTBEAT_INTERVAL),
    "DTS_WORKER_TIMEOUT": str(defaults.WORKER_TIMEOUT),
    "DTS_RECOVERY_INTERVAL": str(defaults.RECOVERY_INTERVAL),
    "DTS_LOST_MESSAGE_GRACE": str(defaults.LOST_MESSAGE_GRACE),
}

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 160)


def domain_names() -> list[str]:
    """Real disposable-mail domains, in a fixed order."""
    from disposable_email_domains import blocklist

    return sorted(blocklist)


def domain_items(count: int) -> Iterator[dict[str, str]]:
    """`count` items `{"domain": ...}`: the real names, then again with a numeric prefix
    (`1-name`, `2-name`, ...) so every item is distinct and still a plausible domain."""
    names = domain_names()
    for index in range(count):
        lap, position = divmod(index, len(names))
        name = names[position]
        yield {"domain": name if lap == 0 else f"{lap}-{name}"}


def register_plugin(client: httpx.Client) -> None:
    reply = client.post("/api/plugins", json=MANIFEST)
    if reply.status_code not in (200, 201):
        raise RuntimeError(f"registering {PLUGIN_ID} failed ({reply.status_code}): {reply.text}")


def _proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def peak_rss_mib(pid: int) -> float:
    """High-water mark of the resident set (VmHWM) since the process started."""
    return _proc_status_kib(pid, "VmHWM") / 1024


def rss_mib(pid: int) -> float:
    return _proc_status_kib(pid, "VmRSS") / 1024


def ensure_plugin_image() -> None:
    """Build example-plugin:1.0.0 on the local base image when it is missing."""
    present = subprocess.run(
        ["docker", "image", "inspect", PLUGIN_IMAGE], capture_output=True, check=False
    )
    if present.returncode == 0:
        return
    console.print(f"building {PLUGIN_IMAGE} ...")
    subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "-t",
            PLUGIN_IMAGE,
            str(REPO / "plugins" / "example_plugin"),
        ],
        check=True,
        capture_output=True,
    )


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"
