"""100,000 real items end to end on this machine: upload, run in Docker, export the results.

What it measures: redis-server + control plane (SQLite store, production timers) + one agent
(`--workers 2` by default) on this machine, the example plugin (batch contract: one container
per 500 items, see plugins/example_plugin/manifest.json), and N items `{"domain": ...}` (real
disposable-mail domains, cycled with a numeric prefix to reach N):

  1. ingest   one `POST /api/tasks/upload` streaming the N items as JSONL (chunked request)
  2. run      wait (progress from `GET /api/tasks/counts?batch_id=...`) until all N finished
  3. export   `GET /api/tasks/export?format=jsonl&batch_id=...` streamed to a file

and checks the export: N records, every one succeeded, every result has a
`registrable_domain` key (the run fails otherwise). From the exported records it splits the
time: queue wait per task (started_at - created_at), container time (sum of
duration_seconds: in batch mode each item's share of its container's run), reporting per
task (finished_at - started_at - duration_seconds), and per batch (500 consecutive ids make
one batch message; its tasks share started_at, set by the agent's start call, and
finished_at, set by its result call) the span, the container run, the agent's result spool
(probed after the run: 500 x ResultSpool.put/remove on the same disk) and the rest. It also
samples the CPU seconds of every process on the machine, grouped: control plane, agent,
redis-server, plugin containers, Docker daemons, everything else (the machine may be
shared: that group shows how much).

The goal (the issue): N = 100,000 in under 10 minutes, submission to exported results.

`--profile` records the control plane and the agent with py-spy during the run (pass
`--py-spy PATH` if it is not on PATH or at /tmp/pyspy/bin/py-spy) and prints where their busy
time goes; it costs some CPU on a small machine, so the timed numbers of a profiled run are
a little pessimistic.

Run from the repo root (several minutes at the default 100,000 items):

    .venv/bin/python -m bench.end_to_end
    .venv/bin/python -m bench.end_to_end --items 2000 --profile

It builds example-plugin:1.0.0 when missing, starts its own redis-server, control plane and
agent on free ports in a temp dir, and stops them (and removes its containers) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/end_to_end.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.common import (
    MANIFEST,
    PLUGIN_ID,
    PRODUCTION_TIMERS,
    console,
    domain_items,
    ensure_plugin_image,
    fmt,
    register_plugin,
)
from desktop_agent.engine.spool import ResultSpool
from task_contract.api import TaskOutcome
from tests.support.processes import AgentProcess, ControlPlane, RedisServer

TASK_TYPE = "domain"
GOAL_SECONDS = 600.0
HTTP_TIMEOUT = 1800.0
UPLOAD_LINES_PER_CHUNK = 1000
POLL_SECONDS = 2.0
STALL_SECONDS = 300.0
CPU_SAMPLE_SECONDS = 0.5
BATCH_ITEMS: int = MANIFEST.get("batch", {}).get("max_items", 1)
DEFAULT_PY_SPY = "/tmp/pyspy/bin/py-spy"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU accounting


_DOCKER_COMMANDS = ("dockerd", "containerd", "containerd-shim", "runc", "docker-init")
PLUGIN_UID = 65534  # the agent runs plugin containers as nobody (executor hardening)
CPU_GROUPS = (
    "control plane",
    "agent",
    "redis-server",
    "plugin containers (uid 65534, every agent's)",
    "dockerd, containerd, shims",
    "other processes (other sessions on this machine)",
)


def _process_cpu(sessions: dict[int, str]) -> dict[int, tuple[str, float]]:
    """pid -> (group, CPU seconds) for every process now running. A process in one of
    `sessions` (the helpers start each child in its own session) also counts what its
    exited, reaped children used (cutime/cstime)."""
    found: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
            uid = os.stat(f"/proc/{entry}").st_uid
        except OSError:
            continue
        command = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        # fields[0] is stat field 3 (state): session is field 6, utime..cstime 14..17
        session = int(fields[3])
        if session in sessions:
            group, ticks = sessions[session], sum(int(v) for v in fields[11:15])
        else:
            ticks = int(fields[11]) + int(fields[12])
            if uid == PLUGIN_UID:
                group = CPU_GROUPS[3]
            elif command.startswith(_DOCKER_COMMANDS):
                group = CPU_GROUPS[4]
            else:
                group = CPU_GROUPS[5]
        found[int(entry)] = (group, ticks / CLOCK_TICKS)
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (user+nice+system+irq+softirq+steal)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds per group between two moments, sampled often enough to catch most of the
    short-lived processes (each plugin container lives a second or two)."""

    def __init__(self, sessions: dict[int, str]) -> None:
        self.sessions = sessions
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.machine_start = 0.0
        self.machine_end = 0.0

    def start(self) -> None:
        self.first = _process_cpu(self.sessions)
        self.last = dict(self.first)
        self.machine_start = machine_busy_seconds()

    def sample(self) -> None:
        self.last.update(_process_cpu(self.sessions))
        self.machine_end = machine_busy_seconds()

    def totals(self) -> dict[str, float]:
        """CPU seconds per group (processes first seen after start count from zero); the
        remainder of the machine's busy time (processes that came and went between two
        samples, kernel threads) is 'unattributed'."""
        totals = dict.fromkeys(CPU_GROUPS, 0.0)
        for pid, (group, seconds) in self.last.items():
            totals[group] += seconds - self.first.get(pid, (group, 0.0))[1]
        totals["unattributed (short-lived processes, kernel)"] = (
            self.machine_end - self.machine_start - sum(totals.values())
        )
        return totals

    @property
    def machine(self) -> float:
        return self.machine_end - self.machine_start


# ---------------------------------------------------------------- py-spy


@dataclass
class Profiler:
    label: str
    path: Path
    popen: subprocess.Popen[bytes]


def start_py_spy(py_spy: str, label: str, pid: int, work: Path) -> Profiler:
    path = work / f"py-spy-{label}.txt"
    popen = subprocess.Popen(
        [
            *(py_spy, "record", "--pid", str(pid), "--rate", "50", "--nonblocking"),
            *("--format", "raw", "--nolineno", "--output", str(path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Profiler(label, path, popen)


def stop_py_spy(profiler: Profiler) -> None:
    if profiler.popen.poll() is None:
        profiler.popen.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            profiler.popen.wait(60)
        except subprocess.TimeoutExpired:
            profiler.popen.kill()
            profiler.popen.wait(10)


_IDLE_LEAVES = {
    "select",
    "poll",
    "epoll",
    "EpollSelector.select",
    "PollSelector.select",
    "Condition.wait",
    "Event.wait",
    "sleep",
    "wait",
    "_wait_for_tstate_lock",
    "Thread.join",
    "_recv_into",
    "recv_into",
    "readinto",
    "SocketIO.readinto",
    "accept",
}


def read_profile(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """(samples by request/operation, samples by innermost project function, busy samples)."""
    where: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    busy = 0
    if not path.exists():
        return where, leaves, 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, raw_count = line.rpartition(" ")
        if not stack or not raw_count.isdigit():
            continue
        frames = stack.split(";")
        names = [frame.split(" (", 1)[0] for frame in frames]
        if names[-1] in _IDLE_LEAVES:
            continue
        count = int(raw_count)
        busy += count
        where[_operation(frames)] += count
        leaves[_innermost_project(frames)] += count
    return where, leaves, busy


_PROJECT = ("control_plane/", "desktop_agent/", "task_contract/")


def _operation(frames: list[str]) -> str:
    """The outermost project function on the stack (the request handler or agent step),
    with the innermost store/executor/client method under it when there is one."""
    project = [f for f in frames if any(p in f for p in _PROJECT)]
    if not project:
        return "(outside the project: server, threads, libraries)"
    names = [f.split(" (", 1)[0] for f in project]
    outer = names[0]
    for name in reversed(names):
        if name.startswith(
            ("SqliteStore.", "DockerExecutor.", "ControlPlaneClient.", "ResultSpool.")
        ):
            return f"{outer} > {name}" if name != outer else outer
    return outer


def _innermost_project(frames: list[str]) -> str:
    for frame in reversed(frames):
        if any(p in frame for p in _PROJECT):
            return frame.split(" (", 1)[0]
    return "(no project frame)"


# ---------------------------------------------------------------- the run


@dataclass
class Run:
    items: int
    workers: int
    ingest_seconds: float = 0.0
    finish_seconds: float = 0.0
    """Upload start -> every task finished."""
    export_seconds: float = 0.0
    export_bytes: int = 0
    batch_id: str = ""
    cpu: dict[str, float] = field(default_factory=dict)
    machine_cpu: float = 0.0
    spool_put: float = 0.0
    spool_remove: float = 0.0
    """Seconds per batch (probe after the run, same disk)."""
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    profiles: dict[str, tuple[Counter[str], Counter[str], int]] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return self.finish_seconds + self.export_seconds


def upload_body(count: int) -> Iterator[bytes]:
    lines: list[str] = []
    for item in domain_items(count):
        lines.append(json.dumps(item))
        if len(lines) == UPLOAD_LINES_PER_CHUNK:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def upload(client: httpx.Client, count: int) -> str:
    reply = client.post(
        "/api/tasks/upload",
        params={"plugin_id": PLUGIN_ID, "type": TASK_TYPE, "format": "jsonl"},
        content=upload_body(count),  # an iterator: httpx sends it chunked
        headers={"Content-Type": "application/x-ndjson"},
        timeout=HTTP_TIMEOUT,
    )
    if reply.status_code != 202:
        raise RuntimeError(f"upload failed ({reply.status_code}): {reply.text[:500]}")
    body = reply.json()
    if int(body["accepted"]) != count:
        raise RuntimeError(f"the control plane accepted {body['accepted']} of {count} items")
    return str(body["batch_id"])


def wait_finished(
    client: httpx.Client, batch_id: str, count: int, started: float, agent: AgentProcess
) -> None:
    """Poll the batch's counts until all `count` tasks are finished, with a progress display;
    fails when the agent exits or nothing finishes for STALL_SECONDS."""
    last_done, last_change = -1, time.monotonic()
    last_line = 0.0
    columns = (
        TextColumn("[bold]running[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        bar = progress.add_task("run", total=count, detail="")
        while True:
            if not agent.alive:
                raise RuntimeError(f"the agent exited:\n{agent.log_tail()}")
            counts = client.get("/api/tasks/counts", params={"batch_id": batch_id}).json()
            done = int(counts["succeeded"]) + int(counts["failed"])
            elapsed = time.perf_counter() - started
            rate = done / elapsed if elapsed else 0.0
            detail = (
                f"queued {int(counts['queued']):,} running {int(counts['running']):,} "
                f"failed {int(counts['failed']):,} | {rate:,.0f} items/s"
            )
            progress.update(bar, completed=done, detail=detail)
            if not console.is_terminal and time.monotonic() - last_line >= 30:
                console.print(f"  {elapsed:7.1f} s  finished {done:,}/{count:,}  {detail}")
                last_line = time.monotonic()
            if done >= count:
                return
            if done != last_done:
                last_done, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                raise RuntimeError(
                    f"no task finished for {STALL_SECONDS:.0f} s ({done:,}/{count:,} done)\n"
                    f"agent log:\n{agent.log_tail()}"
                )
            time.sleep(POLL_SECONDS)


def export(client: httpx.Client, batch_id: str, path: Path) -> int:
    """Stream the batch's export into `path`; returns its size in bytes."""
    size = 0
    with (
        client.stream(
            "GET",
            "/api/tasks/export",
            params={"format": "jsonl", "batch_id": batch_id},
            timeout=HTTP_TIMEOUT,
        ) as reply,
        path.open("wb") as handle,
    ):
        if reply.status_code != 200:
            reply.read()
            raise RuntimeError(f"export failed ({reply.status_code}): {reply.text[:500]}")
        for chunk in reply.iter_bytes(1 << 16):
            handle.write(chunk)
            size += len(chunk)
    return size


def check_export(path: Path, count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The records (timing fields only, to keep memory down) and what is wrong with them."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    not_succeeded: Counter[str] = Counter()
    no_key = 0
    example_bad: dict[str, Any] | None = None
    with path.open("rb") as handle:
        for line in handle:
            record = json.loads(line)
            status = record["status"]
            result = record.get("result")
            if status != "succeeded":
                not_succeeded[f"{status}/{record.get('failure_kind')}"] += 1
                example_bad = example_bad or record
            elif not isinstance(result, dict) or "registrable_domain" not in result:
                no_key += 1
                example_bad = example_bad or record
            records.append(
                {
                    "id": record["id"],
                    "created_at": _time(record["created_at"]),
                    "started_at": _time(record["started_at"]),
                    "finished_at": _time(record["finished_at"]),
                    "duration_seconds": record.get("duration_seconds"),
                }
            )
    if len(records) != count:
        problems.append(f"the export holds {len(records):,} records, not {count:,}")
    if len({r["id"] for r in records}) != len(records):
        problems.append("the export repeats task ids")
    if not_succeeded:
        problems.append(f"{sum(not_succeeded.values()):,} not succeeded: {dict(not_succeeded)}")
    if no_key:
        problems.append(f"{no_key:,} succeeded results lack a registrable_domain key")
    if example_bad is not None:
        problems.append(f"e.g. {json.dumps(example_bad)[:600]}")
    return records, problems


def _time(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


def run_system(args: argparse.Namespace, work: Path) -> Run:
    run = Run(items=args.items, workers=args.workers)
    redis_server = RedisServer(work)
    plane = ControlPlane(redis_server.port, work / "control-plane", work, **PRODUCTION_TIMERS)
    agent = AgentProcess(
        plane.port, work / "agent", work, name="bench-e2e-agent", workers=args.workers
    )
    profilers: list[Profiler] = []
    client: httpx.Client | None = None
    worker_id = ""
    try:
        redis_server.start()
        plane.start()
        client = plane.admin()
        register_plugin(client)  # before the agent starts: its first heartbeat has the queue
        agent.start()
        worker_id = _wait_agent_online(client, agent)
        if args.profile:
            assert plane.popen is not None and agent.popen is not None
            profilers = [
                start_py_spy(args.py_spy, "control plane", plane.popen.pid, work),
                start_py_spy(args.py_spy, "agent", agent.popen.pid, work),
            ]
            time.sleep(1.0)  # let them attach
        sessions = {
            process.popen.pid: name
            for process, name in ((plane, CPU_GROUPS[0]), (agent, CPU_GROUPS[1]))
            if process.popen is not None
        }
        if redis_server.popen is not None:
            sessions[redis_server.popen.pid] = CPU_GROUPS[2]
        meter = CpuMeter(sessions)
        meter.start()
        sampling = threading.Event()
        sampler = threading.Thread(target=_sample_until, args=(meter, sampling), daemon=True)
        sampler.start()
        console.print(f"[bold]ingest[/]: uploading {args.items:,} items as one JSONL stream ...")
        started = time.perf_counter()
        run.batch_id = upload(client, args.items)
        run.ingest_seconds = time.perf_counter() - started
        console.print(f"  accepted in {run.ingest_seconds:.1f} s (batch {run.batch_id})")
        wait_finished(client, run.batch_id, args.items, started, agent)
        run.finish_seconds = time.perf_counter() - started
        sampling.set()
        sampler.join()
        meter.sample()
        run.cpu, run.machine_cpu = meter.totals(), meter.machine
        for profiler in profilers:
            stop_py_spy(profiler)
        console.print(f"  all finished after {run.finish_seconds:.1f} s; exporting ...")
        export_path = work / "export.jsonl"
        started = time.perf_counter()
        run.export_bytes = export(client, run.batch_id, export_path)
        run.export_seconds = time.perf_counter() - started
        run.records, run.problems = check_export(export_path, args.items)
        export_path.unlink()
    finally:
        for profiler in profilers:
            stop_py_spy(profiler)
        if client is not None:
            client.close()
        agent.stop(60)
        plane.stop()
        redis_server.stop()
        _remove_containers(worker_id)
    for profiler in profilers:
        run.profiles[profiler.label] = read_profile(profiler.path)
    run.spool_put, run.spool_remove = spool_probe(work / "spool-probe")
    return run


def _sample_until(meter: CpuMeter, done: threading.Event) -> None:
    while not done.wait(CPU_SAMPLE_SECONDS):
        meter.sample()


def spool_probe(directory: Path, rounds: int = 3) -> tuple[float, float]:
    """Seconds the agent's ResultSpool takes to put and then remove one batch's outcomes
    (BATCH_ITEMS files, one fsync each), on the disk the agent used; median of `rounds`."""
    spool = ResultSpool(directory)
    outcome = TaskOutcome(
        succeeded=True,
        result={"registrable_domain": "example.com", "labels": 2, "valid": True}
        | {f"field_{index}": "x" * 12 for index in range(16)},
        exit_code=0,
        duration_seconds=0.001,
        attempt=1,
    )
    ids = [f"{index:032x}" for index in range(BATCH_ITEMS)]
    puts, removes = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        for task_id in ids:
            spool.put(task_id, outcome)
        puts.append(time.perf_counter() - began)
        began = time.perf_counter()
        for task_id in ids:
            spool.remove(task_id)
        removes.append(time.perf_counter() - began)
    return statistics.median(puts), statistics.median(removes)


def _wait_agent_online(client: httpx.Client, agent: AgentProcess, timeout: float = 60) -> str:
    """The agent's worker id once it is online."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not agent.alive:
            raise RuntimeError(f"the agent exited:\n{agent.log_tail()}")
        online = [w for w in client.get("/api/workers").json() if w.get("online")]
        if online:
            return str(online[0]["id"])
        time.sleep(0.5)
    raise RuntimeError(f"the agent did not come online in {timeout:.0f} s:\n{agent.log_tail()}")


def _remove_containers(worker_id: str) -> None:
    """The agent removes its containers on stop; this catches any a hard stop left behind
    (only this agent's: other sessions may run the same image)."""
    if not worker_id:
        return
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=dts.agent={worker_id}"],
        capture_output=True,
        text=True,
        check=False,
    )
    ids = listed.stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


# ---------------------------------------------------------------- output


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Split:
    queue_wait: list[float]
    reporting: list[float]
    container_sum: float
    batch_spans: list[float]
    batch_container: list[float]
    first_start: float
    last_finish: float
    first_created: float
    last_created: float


def split(run: Run) -> Split:
    records = sorted(run.records, key=lambda r: r["id"])
    queue_wait = [r["started_at"] - r["created_at"] for r in records if r["started_at"]]
    reporting = [
        r["finished_at"] - r["started_at"] - (r["duration_seconds"] or 0.0)
        for r in records
        if r["started_at"] and r["finished_at"]
    ]
    spans, containers = [], []
    for offset in range(0, len(records), BATCH_ITEMS):
        batch = records[offset : offset + BATCH_ITEMS]
        started = [r["started_at"] for r in batch if r["started_at"]]
        finished = [r["finished_at"] for r in batch if r["finished_at"]]
        if not started or not finished:
            continue
        spans.append(max(finished) - min(started))
        containers.append(sum(r["duration_seconds"] or 0.0 for r in batch))
    return Split(
        queue_wait=queue_wait,
        reporting=reporting,
        container_sum=sum(r["duration_seconds"] or 0.0 for r in records),
        batch_spans=spans,
        batch_container=containers,
        first_start=min(r["started_at"] for r in records if r["started_at"]),
        last_finish=max(r["finished_at"] for r in records if r["finished_at"]),
        first_created=min(r["created_at"] for r in records),
        last_created=max(r["created_at"] for r in records),
    )


def print_results(run: Run) -> None:
    parts = split(run)
    workers = run.workers
    table = Table(
        title=(
            f"End to end: {run.items:,} items, example plugin (batch of {BATCH_ITEMS}), "
            f"one agent --workers {workers}, SQLite store"
        ),
        caption=(
            "per-task values from the exported records; ingest and run overlap (the agent "
            "starts on the first published batch while the upload is still being stored)"
        ),
    )
    table.add_column("part", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("note")
    table.add_row(
        "total wall time",
        f"{fmt(run.total_seconds, 1)} s",
        "upload start -> all finished -> export written",
    )
    table.add_row(
        "  upload -> all finished",
        f"{fmt(run.finish_seconds, 1)} s",
        f"{fmt(run.items / run.finish_seconds, 0)} items/s",
    )
    table.add_row(
        "items/s (total)", fmt(run.items / run.total_seconds, 0), "items / total wall time"
    )
    table.add_section()
    table.add_row(
        "ingest",
        f"{fmt(run.ingest_seconds, 1)} s",
        f"POST /api/tasks/upload request time ({fmt(run.items / run.ingest_seconds, 0)} items/s)",
    )
    table.add_row(
        "  tasks created over",
        f"{fmt(parts.last_created - parts.first_created, 1)} s",
        "last created_at - first created_at (store + publish part of the request)",
    )
    table.add_row(
        "queue wait, median",
        f"{fmt(statistics.median(parts.queue_wait), 1)} s",
        "started_at - created_at per task (mostly the backlog ahead of it)",
    )
    table.add_row("queue wait, p95", f"{fmt(_percentile(parts.queue_wait, 0.95), 1)} s", "")
    table.add_row(
        "container time, sum",
        f"{fmt(parts.container_sum, 1)} s",
        f"sum of duration_seconds; / {workers} workers = "
        f"{fmt(parts.container_sum / workers, 1)} s of wall time",
    )
    table.add_row(
        "  per item",
        f"{fmt(1000 * parts.container_sum / run.items, 2)} ms",
        f"per container run of {BATCH_ITEMS}: median "
        f"{fmt(statistics.median(parts.batch_container), 2)} s",
    )
    table.add_row(
        "reporting, median",
        f"{fmt(statistics.median(parts.reporting), 2)} s",
        "finished_at - started_at - duration_seconds per task; in batch mode every task of a "
        "batch shares started_at (start call) and finished_at (result call), so this is the "
        "batch span less the item's own share",
    )
    table.add_row("reporting, p95", f"{fmt(_percentile(parts.reporting, 0.95), 2)} s", "")
    span = statistics.median(parts.batch_spans)
    container = statistics.median(parts.batch_container)
    table.add_row(
        f"per batch of {BATCH_ITEMS}: span, median",
        f"{fmt(span, 2)} s",
        "started_at -> finished_at: the agent's start call -> its result call",
    )
    table.add_row(
        "  container run",
        f"{fmt(container, 2)} s",
        "sum of the batch's duration_seconds (the container's run)",
    )
    table.add_row(
        "  agent result spool (put)",
        f"{fmt(run.spool_put, 2)} s",
        f"{BATCH_ITEMS} x ResultSpool.put, a file + fsync each, before the result call "
        f"(remove after it: {fmt(run.spool_remove, 2)} s); probe after the run, same disk",
    )
    table.add_row(
        "  rest of the span",
        f"{fmt(span - container - run.spool_put, 2)} s",
        "start call reply, input files, docker create/start/wait/remove, result parsing",
    )
    between = (run.finish_seconds * workers - sum(parts.batch_spans)) / len(parts.batch_spans)
    table.add_row(
        "  between batches, mean",
        f"{fmt(between, 2)} s",
        f"(wall x {workers} workers - sum of spans) / {len(parts.batch_spans)} batches: the "
        "result call itself, spool removal, next message, the start call up to its write",
    )
    table.add_row(
        "export",
        f"{fmt(run.export_seconds, 1)} s",
        f"GET /api/tasks/export?format=jsonl, {run.export_bytes / 2**20:,.1f} MiB "
        f"({fmt(run.items / run.export_seconds, 0)} records/s)",
    )
    table.add_section()
    projected = 100_000 / run.items * run.total_seconds
    if run.items >= 100_000:
        goal_met = run.total_seconds * 100_000 / run.items < GOAL_SECONDS and not run.problems
        verdict = "[green]met[/]" if goal_met else "[red]NOT met[/]"
        note = f"{fmt(run.total_seconds / 60, 1)} min for {run.items:,} items"
    else:
        verdict = "[yellow]not tested[/]"
        note = (
            f"only {run.items:,} items: {fmt(run.total_seconds / 60, 2)} min; linearly "
            f"100,000 would take {fmt(projected / 60, 1)} min"
        )
    table.add_row("goal: 100,000 items < 10 min", verdict, note)
    table.add_row(
        "export check",
        "[green]ok[/]" if not run.problems else "[red]FAILED[/]",
        f"{run.items:,} records, all succeeded, all with registrable_domain"
        if not run.problems
        else "; ".join(run.problems)[:300],
    )
    console.print(table)

    if run.cpu:
        wall = run.finish_seconds
        cpu = Table(
            title=(
                f"CPU seconds from upload start to all finished ({os.cpu_count()} cores = "
                f"{os.cpu_count()} CPU s per s), every process on the machine"
            ),
            caption=(
                f"sampled every {CPU_SAMPLE_SECONDS} s from /proc; the machine is shared, so "
                "'other processes' and some of the containers may be other sessions' work"
            ),
        )
        for name in ("group", "CPU s", "share of machine busy", "cores busy (avg)"):
            cpu.add_column(name, justify="right" if name != "group" else "left")
        machine = run.machine_cpu
        for name, value in run.cpu.items():
            cpu.add_row(
                name,
                fmt(value, 1),
                f"{100 * value / machine:.1f} %" if machine else "n/a",
                fmt(value / wall, 2),
            )
        cpu.add_section()
        cpu.add_row(
            "machine busy",
            fmt(machine, 1),
            "100 %",
            f"{fmt(machine / wall, 2)} of {os.cpu_count()}",
        )
        console.print(cpu)

    for label, (where, leaves, busy) in run.profiles.items():
        table = Table(
            title=f"py-spy: where the {label}'s busy time goes (50 Hz, idle samples left out)",
            caption="outermost project function on the stack > innermost store/executor/client "
            "method under it",
        )
        table.add_column("operation")
        table.add_column("% busy", justify="right")
        for name, count in where.most_common(14):
            table.add_row(name, fmt(100 * count / (busy or 1), 1))
        table.add_section()
        table.add_row("busy samples", f"{busy:,}")
        console.print(table)
        inner = Table(title=f"py-spy: innermost project function, {label}")
        inner.add_column("function")
        inner.add_column("% busy", justify="right")
        for name, count in leaves.most_common(12):
            inner.add_row(name, fmt(100 * count / (busy or 1), 1))
        console.print(inner)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.end_to_end",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--items", type=int, default=100_000, help="items to process")
    parser.add_argument("--workers", type=int, default=2, help="the agent's --workers")
    parser.add_argument(
        "--profile", action="store_true", help="record control plane and agent with py-spy"
    )
    default_spy = shutil.which("py-spy") or (
        DEFAULT_PY_SPY if Path(DEFAULT_PY_SPY).exists() else None
    )
    parser.add_argument("--py-spy", default=default_spy, help="py-spy executable")
    args = parser.parse_args(argv)
    if args.profile and not args.py_spy:
        parser.error("--profile needs py-spy: pip install py-spy, or pass --py-spy PATH")
    ensure_plugin_image()
    with tempfile.TemporaryDirectory(prefix="dts-bench-e2e-") as tmp:
        run = run_system(args, Path(tmp))
    print_results(run)
    if run.problems:
        for problem in run.problems:
            console.print(f"[bold red]FAILED[/] {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
