"""The main job, end to end on one machine with embedded defaults.

Starts the control plane (SQLite store, all-in-one Redis) and one agent, builds and
registers the example plugin, submits real domain names (the `disposable-email-domains`
package's published blocklist) with a progress bar, waits, prints a summary and exports
the results. Running it again reuses the same store and adds a new run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from disposable_email_domains import blocklist
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from control_plane.cli.api_client import AdminClient, CliError  # noqa: E402
from control_plane.cli.export import export_to  # noqa: E402
from control_plane.cli.settings import CliSettings  # noqa: E402
from control_plane.cli.submit import submit_file  # noqa: E402

PLUGIN_DIR = REPO / "plugins" / "example_plugin"
console = Console()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--items",
        type=int,
        default=len(blocklist),
        help=f"how many real domains (default: all {len(blocklist)})",
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="tasks the agent runs at once (default 4)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("API_PORT", "8000")),
        help="API port (default 8000)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "runs", help="where inputs, logs and results go"
    )
    parser.add_argument(
        "--base-image", default=os.environ.get("DTS_BASE_IMAGE", "dts-python-base:bookworm")
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the control plane and agent running"
    )
    return parser.parse_args()


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("ab")
    return subprocess.Popen(
        args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
    )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the control plane exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the control plane did not answer within {timeout}s; see {log}")


def build_plugin(base_image: str) -> None:
    with console.status("building the example plugin image (docker build)"):
        done = subprocess.run(
            [
                "docker",
                "build",
                "-q",
                "--build-arg",
                f"BASE_IMAGE={base_image}",
                "-t",
                "example-plugin:1.0.0",
                str(PLUGIN_DIR),
            ],
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise SystemExit(f"docker build failed:\n{done.stderr}")
    console.print("built example-plugin:1.0.0")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    args = parse_args()
    run_id = time.strftime("%Y%m%d-%H%M%S")
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if port_in_use(args.port):
        raise SystemExit(f"port {args.port} is in use: stop what listens there or pass --port")

    names = sorted(blocklist)
    count = min(args.items, len(names))
    sample = [names[i * len(names) // count] for i in range(count)]
    items = args.out / f"domains-{run_id}.txt"
    items.write_text("\n".join(sample) + "\n")
    console.print(
        f"input: {count} real domain names from the disposable-email-domains blocklist -> {items}"
    )

    build_plugin(args.base_image)
    # Tokens for this run only, handed to the children through their environment.
    admin, enrollment = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "API_PORT": str(args.port),
        "API_HOST": "127.0.0.1",
        "DTS_ADMIN_TOKEN": admin,
        "DTS_ENROLLMENT_TOKEN": enrollment,
        "DTS_HEARTBEAT_INTERVAL": "2",
    }
    url = f"http://127.0.0.1:{args.port}"
    with ExitStack() as stack:
        plane = start("control-plane", [sys.executable, "-m", "control_plane"], env, logs)
        if not args.keep_running:
            stack.callback(stop, plane)
        wait_healthy(url, plane, logs / "control-plane.log")
        console.print(f"control plane on {url} (docs: {url}/docs)")
        agent = start(
            "agent",
            [
                sys.executable,
                "-m",
                "desktop_agent.worker",
                "--server",
                f"127.0.0.1:{args.port}",
                "--workers",
                str(args.workers),
                "--name",
                "main-job-agent",
            ],
            env,
            logs,
        )
        if not args.keep_running:
            stack.callback(stop, agent)

        client = AdminClient(CliSettings(DTS_SERVER=url, DTS_ADMIN_TOKEN=admin))
        stack.callback(client.close)
        try:
            manifest = json.loads((PLUGIN_DIR / "manifest.json").read_text())
            client.request("POST", "/api/plugins", json=manifest)
            started = time.monotonic()
            summary = submit_file(
                client, items, "example-plugin", "domain", "lines", None, {}, console
            )
            counts = wait_for_batches(client, summary["batches"], count)
            elapsed = time.monotonic() - started
            out = args.out / f"results-{run_id}.jsonl"
            written = sum(
                export_to(client, _part(out, i), "jsonl", {"batch_id": b})
                for i, b in enumerate(summary["batches"])
            )
            merge_parts(out, len(summary["batches"]))
        except CliError as exc:
            console.print(f"[red]error:[/red] {exc}\nlogs: {logs}")
            return 2
        table = Table(title="main job")
        for column in ("items", "succeeded", "failed", "seconds", "items/s"):
            table.add_column(column, justify="right")
        table.add_row(
            str(count),
            str(counts["succeeded"]),
            str(counts["failed"]),
            f"{elapsed:.1f}",
            f"{count / elapsed:.2f}",
        )
        console.print(table)
        console.print(f"results ({written} records): {out}")
        if args.keep_running:
            console.print(
                f"left running: control plane pid {plane.pid}, agent pid {agent.pid}\n"
                f"admin token for this run (shown once): {admin}"
            )
    return 0 if counts["failed"] == 0 else 1


def wait_for_batches(client: AdminClient, batches: list[str], total: int) -> dict[str, int]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("processing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[ok]} ok [red]{task.fields[bad]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("run", total=total, ok=0, bad=0)
        while True:
            counts = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0}
            for batch in batches:
                for status, n in client.request(
                    "GET", "/api/tasks/counts", params={"batch_id": batch}
                ).items():
                    counts[status] += n
            progress.update(
                bar,
                completed=counts["succeeded"] + counts["failed"],
                ok=counts["succeeded"],
                bad=counts["failed"],
            )
            if counts["queued"] + counts["running"] == 0:
                return counts
            time.sleep(1)


def _part(out: Path, index: int) -> Path:
    return out.with_name(f"{out.name}.{index}")


def merge_parts(out: Path, parts: int) -> None:
    with out.open("wb") as merged:
        for index in range(parts):
            part = _part(out, index)
            merged.write(part.read_bytes())
            part.unlink()


if __name__ == "__main__":
    sys.exit(main())
