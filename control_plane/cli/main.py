"""`dts` entry point: argument parsing and error reporting only; commands live beside it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console

from control_plane.cli.api_client import AdminClient, CliError
from control_plane.cli.export import export_to
from control_plane.cli.monitor import show_status, show_task, wait_until_done
from control_plane.cli.settings import CliSettings
from control_plane.cli.submit import parse_params, submit_file
from task_contract.items import FORMATS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dts", description="Distributed Task System client")
    parser.add_argument("--server", help="control plane HOST:PORT or URL (env DTS_SERVER)")
    parser.add_argument("--token", help="admin token (env DTS_ADMIN_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)

    submit = sub.add_parser("submit", help="submit every item of a file (JSONL, CSV, one a line)")
    submit.add_argument("file", type=Path)
    submit.add_argument("--plugin", required=True, help="plugin id")
    submit.add_argument("--type", default="domain", help="task type (default: domain)")
    submit.add_argument("--format", choices=FORMATS, help="default: from the file extension")
    submit.add_argument("--field", help="key for one-value lines (default: the task type)")
    submit.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")

    status = sub.add_parser("status", help="counts per status and agents, or one task")
    status.add_argument("task_id", nargs="?")
    _filters(status)

    wait = sub.add_parser("wait", help="show progress until nothing is queued or running")
    wait.add_argument("--timeout", type=float, help="give up after this many seconds")
    _filters(wait)

    export = sub.add_parser("export", help="write results to a JSONL or CSV file")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--output", type=Path, required=True)
    _filters(export)
    export.add_argument("--status", choices=("queued", "running", "succeeded", "failed"))

    plugins = sub.add_parser("plugins", help="register or list plugins")
    plugins_sub = plugins.add_subparsers(dest="plugins_command", required=True)
    register = plugins_sub.add_parser("register", help="register a plugin manifest JSON file")
    register.add_argument("manifest", type=Path)
    plugins_sub.add_parser("list")
    return parser


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", dest="plugin_id")
    parser.add_argument("--type")
    parser.add_argument("--batch", dest="batch_id", help="a batch id printed by submit")


def _params(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("plugin_id", "type", "status", "batch_id")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None)}


def run(args: argparse.Namespace, console: Console) -> int:
    overrides: dict[str, Any] = {}
    if args.server:
        overrides["DTS_SERVER"] = args.server
    if args.token:
        overrides["DTS_ADMIN_TOKEN"] = SecretStr(args.token)
    client = AdminClient(CliSettings(**overrides))
    try:
        if args.command == "submit":
            summary = submit_file(
                client,
                args.file,
                args.plugin,
                args.type,
                args.format,
                args.field,
                parse_params(args.param),
                console,
            )
            console.print(f"accepted {summary['accepted']} item(s) for plugin {args.plugin}")
            for batch in summary["batches"]:
                console.print(f"batch {batch}")
        elif args.command == "status":
            if args.task_id:
                show_task(client, console, args.task_id)
            else:
                show_status(client, console, _params(args))
        elif args.command == "wait":
            counts = wait_until_done(client, console, _params(args), args.timeout)
            console.print(json.dumps(counts))
            return 0 if counts["queued"] + counts["running"] == 0 else 1
        elif args.command == "export":
            count = export_to(client, args.output, args.format, _params(args))
            console.print(f"wrote {count} record(s) to {args.output}")
        elif args.command == "plugins":
            if args.plugins_command == "register":
                try:
                    manifest = json.loads(args.manifest.read_text())
                except (OSError, json.JSONDecodeError) as exc:
                    raise CliError(f"cannot read manifest {args.manifest}: {exc}") from exc
                plugin = client.request("POST", "/api/plugins", json=manifest)
                console.print(
                    f"registered {plugin['id']} {plugin['version']} on queue {plugin['queue']}"
                )
            else:
                for plugin in client.request("GET", "/api/plugins"):
                    console.print(
                        f"{plugin['id']}\t{plugin['version']}\t{plugin['queue']}\t{plugin['docker_image']}"
                    )
    finally:
        client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(soft_wrap=True)
    try:
        return run(args, console)
    except CliError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
