"""Throughput with agents on 1, 2 and 3 separate hosts, against the same agents on one host.

What it measures: N items `{"domain": ...}` (real disposable-mail domains, cycled with a
numeric prefix to reach N) for the example plugin, whose manifest declares batches of 500
(so N/500 batch messages, one container each), submitted in one `POST /api/tasks/bulk` and
timed from the submit until `GET /api/tasks/counts` shows all N finished. Rows:

  1 host              one agent in network namespace dts-h1 (the ratio baseline)
  2 hosts, 3 hosts    one agent on each of dts-h1 .. dts-hK
  root ns             as many agents as the largest row, all in the root namespace: the
                      same agents without the bridge in between (what the netns costs)

Hosts are network namespaces on a private bridge (tests.support.netns): each agent reaches
the control plane and Redis at 10.213.7.1 over its own veth, as a separate machine on a LAN
would. Each row gets a fresh control plane (SQLite store in its own temp dir) over a flushed
Redis, its agents enrolled and consuming before anything is timed, and an untimed warm-up
batch first. A row fails when any item does not succeed.

All hosts are namespaces of this one machine: they share its CPU cores, its Docker engine and
its disk with each other and with the control plane. The rows show how the work spreads over
agents and what the network path costs, not what more machines would add.

Run from the repo root as root (a few minutes at the default 20,000 items):

    .venv/bin/python -m bench.multi_host
    .venv/bin/python -m bench.multi_host --items 2000 --workers 1

It builds example-plugin:1.0.0 when missing, creates and removes its namespaces and bridge,
starts its own redis-server, control planes and agents, and stops them at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/multi_host.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import redis
from rich.table import Table

from bench.common import (
    PLUGIN_ID,
    PRODUCTION_TIMERS,
    console,
    domain_items,
    ensure_plugin_image,
    fmt,
    ratio,
    register_plugin,
)
from tests.support.netns import (
    Host,
    Hosts,
    NetnsAgent,
    NetnsControlPlane,
    NetnsRedis,
    NetnsUnavailable,
)
from tests.support.processes import wait_for

TASK_TYPE = "domain"
PARAMETERS = {"suffix_rules": "all"}
WARM_UP_ITEMS = 10


@dataclass
class Row:
    hosts: int
    """Network namespaces the agents run in; 0: all in the root namespace."""
    agents: int
    workers: int
    items: int
    seconds: float
    submit_seconds: float
    per_agent: list[int]
    ran_again: int
    """Items started more than once (attempts > 1): requeued from an agent taken for gone."""

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    @property
    def where(self) -> str:
        return "root ns" if self.hosts == 0 else str(self.hosts)


def submit(client: httpx.Client, items: list[dict[str, str]]) -> str:
    reply = client.post(
        "/api/tasks/bulk",
        json={
            "type": TASK_TYPE,
            "plugin_id": PLUGIN_ID,
            "plugin_parameters": PARAMETERS,
            "items": items,
        },
    )
    if reply.status_code != 202:
        raise RuntimeError(f"bulk submit failed ({reply.status_code}): {reply.text}")
    return str(reply.json()["batch_id"])


def wait_done(
    client: httpx.Client, batch: str, count: int, agents: list[NetnsAgent], timeout: float
) -> dict[str, int]:
    def done() -> dict[str, int] | None:
        for agent in agents:
            if not agent.alive:
                raise RuntimeError(f"agent {agent.name} exited:\n{agent.log_tail()}")
        counts = client.get("/api/tasks/counts", params={"batch_id": batch}).json()
        return counts if counts["succeeded"] + counts["failed"] >= count else None

    counts: dict[str, int] = wait_for(done, timeout, f"{count} item(s)", interval=0.25)
    if counts["succeeded"] != count:
        raise RuntimeError(f"not every item succeeded: {counts}")
    return counts


def batch_tasks(client: httpx.Client, batch: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    while True:
        page = client.get(
            "/api/tasks", params={"batch_id": batch, "offset": len(tasks), "limit": 1000}
        ).json()
        tasks.extend(page["items"])
        if len(tasks) >= page["total"] or not page["items"]:
            return tasks


def run_row(
    places: list[Host | None],
    workers: int,
    items: list[dict[str, str]],
    redis_server: NetnsRedis,
    work: Path,
    timeout: float,
) -> Row:
    """One configuration on a fresh control plane: an agent per place (None: root ns)."""
    hosts = sum(1 for p in places if p is not None)
    where = f"{hosts} host(s)" if hosts else "the root namespace"
    console.print(f"{len(places)} agent(s) x {workers} worker(s) on {where} ...")
    row_dir = Path(tempfile.mkdtemp(prefix=f"row-{hosts}h{len(places)}a-", dir=work))
    redis.Redis(port=redis_server.port).flushall()
    plane = NetnsControlPlane(
        redis_server.port, row_dir / "control-plane", row_dir, **PRODUCTION_TIMERS
    )
    agents: list[NetnsAgent] = []
    plane.start()
    try:
        with plane.admin() as client:
            register_plugin(client)  # before the agents: their first heartbeat has the queue
            for index, place in enumerate(places, start=1):
                name = f"bench-{place.name if place else 'root'}-{index}"
                agent = NetnsAgent(place, plane.server, row_dir / name, row_dir, name, workers)
                agent.start()
                agents.append(agent)
            names = {a.name for a in agents}
            wait_for(
                lambda: (
                    {w["name"] for w in client.get("/api/workers").json() if w["online"]} >= names
                ),
                120,
                "agents online",
            )
            for agent in agents:
                wait_for(agent.ready, 120, f"{agent.name} consuming")
            warm = submit(client, list(domain_items(len(items) + WARM_UP_ITEMS))[-WARM_UP_ITEMS:])
            wait_done(client, warm, WARM_UP_ITEMS, agents, 120)

            started = time.perf_counter()
            batch = submit(client, items)
            submitted = time.perf_counter() - started
            wait_done(client, batch, len(items), agents, timeout)
            seconds = time.perf_counter() - started

            by_name = {w["name"]: w["id"] for w in client.get("/api/workers").json()}
            per_agent = [
                int(
                    client.get(
                        "/api/tasks/counts",
                        params={"batch_id": batch, "worker_id": by_name[a.name]},
                    ).json()["succeeded"]
                )
                for a in agents
            ]
            ran_again = sum(1 for t in batch_tasks(client, batch) if t["attempts"] > 1)
    finally:
        for agent in agents:
            agent.stop()
        plane.stop()
    row = Row(hosts, len(places), workers, len(items), seconds, submitted, per_agent, ran_again)
    warnings = sum(a.log_tail(10**9).count(" WARNING ") for a in agents)
    requeues = plane.log_tail(10**9).count("requeueing")
    console.print(
        f"  {fmt(row.seconds)} s, {fmt(row.rate, 1)} items/s, per agent {row.per_agent}, "
        f"{row.ran_again} ran twice; {warnings} agent warning(s), {requeues} requeue(s)"
    )
    return row


def print_table(rows: list[Row]) -> None:
    base = next((r.rate for r in rows if r.hosts == 1 and r.agents == 1), 0.0)
    cores = os.cpu_count() or 0
    table = Table(
        title=f"Agents on separate hosts (network namespaces): {rows[0].items:,} items each",
        caption=(
            f"every host is a network namespace of this one machine: all of them share its "
            f"{cores} CPU cores, Docker engine and disk with the control plane and Redis; "
            "seconds = one bulk submit -> all items finished (example plugin, batches of 500); "
            "submit s = the bulk request alone (part of seconds); per agent = items each agent "
            "ran; ran twice = items with attempts > 1"
        ),
    )
    for name in ("hosts", "agents", "workers each", "items", "seconds", "items/s"):
        table.add_column(name, justify="right")
    table.add_column("ratio to 1 agent", justify="right")
    table.add_column("submit s", justify="right")
    table.add_column("per agent", justify="right")
    table.add_column("ran twice", justify="right")
    table.add_column("note")
    for row in rows:
        same = next((r for r in rows if r.hosts == row.agents and r.agents == row.agents), None)
        if row.hosts == 0:
            note = "same agents, no netns"
            if same is not None:
                note = f"no netns; {row.agents} hosts = {ratio(same.rate, row.rate)} of it"
        elif row.agents == 1:
            note = "ratio base"
        else:
            note = ""
        if row.hosts == 0:
            table.add_section()
        table.add_row(
            row.where,
            str(row.agents),
            str(row.workers),
            f"{row.items:,}",
            fmt(row.seconds),
            fmt(row.rate, 1),
            ratio(row.rate, base),
            fmt(row.submit_seconds),
            "/".join(f"{n:,}" for n in row.per_agent),
            f"{row.ran_again:,}",
            note,
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.multi_host",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--items", type=int, default=20_000, help="items per row")
    parser.add_argument("--hosts", type=int, default=3, help="largest number of hosts")
    parser.add_argument("--workers", type=int, default=2, help="--workers of each agent")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds a row may take before it fails"
    )
    parser.add_argument(
        "--rows", help="rows to run, e.g. '1,3,root' (default: 1 .. --hosts, then root)"
    )
    parser.add_argument(
        "--keep", type=Path, help="work in this directory and keep it (logs, stores)"
    )
    args = parser.parse_args(argv)
    wanted = (args.rows or ",".join([*map(str, range(1, args.hosts + 1)), "root"])).split(",")
    if any(w != "root" and not (w.isdigit() and 1 <= int(w) <= args.hosts) for w in wanted):
        parser.error(f"--rows: each of {wanted} must be 1..{args.hosts} or 'root'")
    items = list(domain_items(args.items))
    ensure_plugin_image()

    rows: list[Row] = []
    try:
        with Hosts(args.hosts) as hosts, contextlib.ExitStack() as stack:
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                work = args.keep.resolve()
            else:
                work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dts-mh-")))
            redis_server = NetnsRedis(work)
            redis_server.start()
            try:
                configurations: list[list[Host | None]] = [
                    [None] * len(hosts) if w == "root" else list(hosts.hosts[: int(w)])
                    for w in wanted
                ]
                for places in configurations:
                    rows.append(
                        run_row(places, args.workers, items, redis_server, work, args.timeout)
                    )
            finally:
                redis_server.stop()
    except NetnsUnavailable as exc:
        console.print(f"[red]cannot create the hosts:[/red] {exc} (run as root with iproute2)")
        return 2
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
