"""Per-task overhead of the agent over a bare `docker run` of the same plugin and input.

What it measures, side by side in one run, for N tasks a path of the example plugin (real
disposable-mail domains as `{"domain": ...}`), each path running its tasks one at a time:

  bare docker run      N sequential `docker run --rm` (the CLI, from a subprocess) with
                       /input (input.json + parameters.json, read-only) and /output mounted
                       and the agent's hardening flags, reading /output/result.json after
                       each. The baseline: every ratio is to its s/task.
  DockerExecutor.run   the same N through `desktop_agent.engine.executor.DockerExecutor.run`
                       (Docker SDK path, no HTTP, no broker).
  system, --workers 1  redis-server + control plane + one agent (`--workers 1`): the tasks
                       in one bulk request, timed from submission until `/api/tasks/counts`
                       shows them all finished; s/task = total / N. Below it, each task's
                       started_at -> finished_at (time inside the agent, from its start call
                       to its result report) and duration_seconds (the container's own run).
  system, --workers 2  the same with an agent running two at a time, for information.

The machine may be shared, so the paths are interleaved: the N tasks are split into
`--rounds` rounds, every path runs each round, and the order rotates from round to round.
Every path first runs one untimed task (image and page caches hot, agents consuming). Any
task that does not succeed fails the run.

Run from the repo root (about three minutes at the default 30 tasks on an idle machine):

    .venv/bin/python -m bench.agent_overhead
    .venv/bin/python -m bench.agent_overhead --tasks 10 --rounds 2

It builds example-plugin:1.0.0 when missing, starts its own redis-servers, control planes and
agents on free ports in a temp dir, and stops them (and removes its containers) at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/agent_overhead.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker
import httpx
from rich.table import Table

from bench.common import (
    PLUGIN_ID,
    PLUGIN_IMAGE,
    PRODUCTION_TIMERS,
    console,
    domain_items,
    ensure_plugin_image,
    fmt,
    ratio,
    register_plugin,
)
from desktop_agent.engine import defaults as agent_defaults
from desktop_agent.engine.executor import TMPFS_SIZE, DockerExecutor, RunLimits
from task_contract.api import TaskAssignment
from task_contract.manifest import PluginLimits
from tests.support.processes import AgentProcess, ControlPlane, RedisServer, wait_for

TASK_TYPE = "domain"
PARAMETERS = {"suffix_rules": "all"}
FINISH_TIMEOUT_PER_TASK = 60.0


def inputs(count: int, offset: int = 0) -> list[dict[str, str]]:
    """Task inputs; `offset` skips the first names so warm-up items differ from timed ones."""
    return list(domain_items(count + offset))[offset:]


# ---------------------------------------------------------------- bare docker run


def docker_run_args(input_dir: Path, output_dir: Path, task_id: str, label: str) -> list[str]:
    """`docker run` with the hardening DockerExecutor applies (see executor._hardening)."""
    memory = f"{agent_defaults.MEMORY_MB}m"
    return [
        *("docker", "run", "--rm", "--label", label),
        *("--network", "none", "--read-only"),
        *("--tmpfs", f"/tmp:rw,nosuid,nodev,size={TMPFS_SIZE},mode=1777"),
        *("--cap-drop", "ALL", "--security-opt", "no-new-privileges"),
        *("--user", "65534:65534", "--pids-limit", "256"),
        *("--memory", memory, "--memory-swap", memory),
        *("--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=1"),
        *("-e", f"DTS_TASK_ID={task_id}", "-e", f"DTS_TASK_TYPE={TASK_TYPE}", "-e", "HOME=/tmp"),
        *("-v", f"{input_dir}:/input:ro", "-v", f"{output_dir}:/output:rw"),
        PLUGIN_IMAGE,
    ]


def bare_docker_run(items: list[dict[str, str]], work: Path, label: str) -> float:
    """Seconds for `docker run --rm` of each item in turn, reading each result."""
    started = time.perf_counter()
    for index, item in enumerate(items):
        run_dir = Path(tempfile.mkdtemp(prefix="bare-", dir=work))
        input_dir, output_dir = run_dir / "input", run_dir / "output"
        input_dir.mkdir()
        output_dir.mkdir()
        input_dir.chmod(0o755)
        output_dir.chmod(0o777)
        for name, value in (("input.json", item), ("parameters.json", PARAMETERS)):
            (input_dir / name).write_text(json.dumps(value), encoding="utf-8")
            (input_dir / name).chmod(0o644)
        run = subprocess.run(
            docker_run_args(input_dir, output_dir, f"bare-{index}", label),
            capture_output=True,
            check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(f"docker run failed ({run.returncode}): {run.stderr.decode()}")
        result = json.loads((output_dir / "result.json").read_bytes())
        if not isinstance(result, dict):
            raise RuntimeError(f"unexpected result for {item}: {result!r}")
    return time.perf_counter() - started


# ---------------------------------------------------------------- DockerExecutor


def executor_runs(executor: DockerExecutor, items: list[dict[str, str]]) -> float:
    limits = RunLimits.from_plugin(
        PluginLimits(),
        default_memory_mb=agent_defaults.MEMORY_MB,
        default_timeout_seconds=agent_defaults.TIMEOUT_SECONDS,
    )
    started = time.perf_counter()
    for index, item in enumerate(items):
        assignment = TaskAssignment(
            task_id=f"bench-{index}-{uuid.uuid4().hex[:8]}",
            plugin_id=PLUGIN_ID,
            plugin_version="1.0.0",
            docker_image=PLUGIN_IMAGE,
            type=TASK_TYPE,
            data=item,
            parameters=PARAMETERS,
            limits=PluginLimits(),
            attempt=1,
        )
        outcome = executor.run(assignment, limits)
        if not outcome.succeeded:
            raise RuntimeError(f"executor run of {item} failed: {outcome.error}")
    return time.perf_counter() - started


# ---------------------------------------------------------------- the whole system


class System:
    """redis-server + control plane + one agent, kept up across rounds."""

    def __init__(self, work: Path, workers: int) -> None:
        self.workers = workers
        self.dir = Path(tempfile.mkdtemp(prefix=f"system-w{workers}-", dir=work))
        self.redis = RedisServer(self.dir)
        self.plane: ControlPlane | None = None
        self.agent: AgentProcess | None = None
        self.client: httpx.Client | None = None
        self.in_agent: list[float] = []
        self.container: list[float] = []

    def start(self) -> None:
        self.redis.start()
        self.plane = ControlPlane(
            self.redis.port, self.dir / "control-plane", self.dir, **PRODUCTION_TIMERS
        )
        self.plane.start()
        self.client = self.plane.admin()
        register_plugin(self.client)  # before the agent starts: its first heartbeat has the queue
        self.agent = AgentProcess(
            self.plane.port,
            self.dir / "agent",
            self.dir,
            name=f"bench-agent-w{self.workers}",
            workers=self.workers,
        )
        self.agent.start()

    def run(self, items: list[dict[str, str]], *, record: bool = True) -> float:
        """Seconds from one bulk submission of `items` until all of them finished."""
        assert self.client is not None and self.agent is not None
        started = time.perf_counter()
        batch = submit(self.client, items)
        wait_finished(
            self.client, batch, len(items), FINISH_TIMEOUT_PER_TASK * len(items), self.agent
        )
        seconds = time.perf_counter() - started
        tasks = batch_tasks(self.client, batch)
        failed = [t for t in tasks if t["status"] != "succeeded"]
        if failed:
            raise RuntimeError(f"{len(failed)} task(s) did not succeed, e.g. {failed[0]}")
        if record:
            self.in_agent += [_seconds(t["started_at"], t["finished_at"]) for t in tasks]
            self.container += [float(t["duration_seconds"]) for t in tasks]
        return seconds

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        if self.client is not None:
            self.client.close()
        if self.plane is not None:
            self.plane.stop()
        self.redis.stop()


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


def wait_finished(
    client: httpx.Client, batch: str, count: int, timeout: float, agent: AgentProcess
) -> None:
    def finished() -> bool:
        if not agent.alive:
            raise RuntimeError(f"the agent exited:\n{agent.log_tail()}")
        counts = client.get("/api/tasks/counts", params={"batch_id": batch}).json()
        return int(counts["succeeded"]) + int(counts["failed"]) >= count

    wait_for(finished, timeout, f"{count} task(s) of batch {batch}", interval=0.05)


def batch_tasks(client: httpx.Client, batch: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    while True:
        page = client.get(
            "/api/tasks", params={"batch_id": batch, "offset": len(tasks), "limit": 1000}
        ).json()
        tasks.extend(page["items"])
        if len(tasks) >= page["total"] or not page["items"]:
            return tasks


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


# ---------------------------------------------------------------- output


@dataclass
class Timing:
    """One path's rounds: (tasks, seconds) each."""

    rounds: list[tuple[int, float]] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return sum(n for n, _ in self.rounds)

    @property
    def seconds(self) -> float:
        return sum(s for _, s in self.rounds)

    @property
    def per_task(self) -> float:
        return self.seconds / self.tasks

    def per_round(self) -> str:
        return " / ".join(f"{s / n:.2f}" for n, s in self.rounds)


def print_table(timings: dict[str, Timing], systems: list[System], count: int) -> None:
    bare = timings[BARE].per_task
    table = Table(
        title=f"Agent overhead over a bare docker run: {count} tasks a path, one at a time",
        caption=(
            "paths interleaved in rounds (order rotated each round) so they share the machine's "
            "load; ratio = s/task / bare docker run's s/task"
        ),
    )
    table.add_column("path", no_wrap=True)
    for name in ("tasks", "total s", "s/task", "ratio to bare docker run", "s/task per round"):
        table.add_column(name, justify="right")
    table.add_column("note")
    notes = {
        BARE: "docker CLI, --rm, hardening flags; baseline",
        EXECUTOR: "SDK: create, start, wait, logs, remove",
    }
    for name, timing in timings.items():
        if name.startswith("system"):
            table.add_section()
        table.add_row(
            name,
            str(timing.tasks),
            fmt(timing.seconds),
            fmt(timing.per_task, 3),
            ratio(timing.per_task, bare),
            timing.per_round(),
            notes.get(name, "one bulk submit -> all finished"),
        )
        system = next((s for s in systems if name == system_name(s.workers)), None)
        if system is None:
            continue
        for label, values, note in (
            ("in agent", system.in_agent, "started_at -> finished_at"),
            ("container", system.container, "duration_seconds: start -> exit"),
        ):
            mean = statistics.fmean(values)
            table.add_row(
                f"  {label}",
                str(len(values)),
                fmt(sum(values)),
                fmt(mean, 3),
                ratio(mean, bare),
                "",
                f"{note}; median {statistics.median(values):.3f} s",
            )
    console.print(table)


# ---------------------------------------------------------------- main

BARE = "bare docker run"
EXECUTOR = "DockerExecutor.run"


def system_name(workers: int) -> str:
    return f"system, agent --workers {workers}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.agent_overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tasks", type=int, default=30, help="tasks per path")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds the tasks are split into"
    )
    args = parser.parse_args(argv)
    count: int = args.tasks
    rounds = max(1, min(args.rounds, count))
    items = inputs(count)
    warm_item = inputs(1, offset=count)
    chunks = [items[r * count // rounds : (r + 1) * count // rounds] for r in range(rounds)]
    bench_id = uuid.uuid4().hex[:12]
    label = f"dts.bench={bench_id}"
    ensure_plugin_image()

    client = docker.from_env()
    timings: dict[str, Timing] = {}
    with tempfile.TemporaryDirectory(prefix="dts-bench-agent-") as tmp:
        work = Path(tmp)
        executor = DockerExecutor(client, work / "executor", labels={"dts.bench": bench_id})
        systems = [System(work, 1), System(work, 2)]
        try:
            for system in systems:
                console.print(f"starting control plane + agent --workers {system.workers} ...")
                system.start()
            paths: dict[str, Callable[..., float]] = {
                BARE: lambda chunk, record=True: bare_docker_run(chunk, work, label),
                EXECUTOR: lambda chunk, record=True: executor_runs(executor, chunk),
            }
            for system in systems:
                paths[system_name(system.workers)] = system.run
            timings = {name: Timing() for name in paths}
            # Warm-up, untimed: image and page caches hot, every agent consuming.
            for name, run in paths.items():
                console.print(f"warm-up: {name}")
                run(warm_item, record=False)
            names = list(paths)
            for number, chunk in enumerate(chunks):
                shift = number % len(names)
                for name in names[shift:] + names[:shift]:
                    console.print(f"round {number + 1}/{rounds}: {name} x {len(chunk)} ...")
                    timings[name].rounds.append((len(chunk), paths[name](chunk)))
        finally:
            for system in systems:
                system.stop()
            executor.remove_leftovers()
            for container in client.containers.list(all=True, filters={"label": label}):
                container.remove(force=True)
            client.close()

    print_table(timings, systems, count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
