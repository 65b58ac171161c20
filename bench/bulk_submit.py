"""Bulk submission throughput and memory of the control plane, against Celery's own publish rate.

What it measures: submitting N items `{"domain": ...}` (real disposable-mail domains, cycled
with a numeric prefix to reach N) to the example plugin, three ways, each on a fresh control
plane (SQLite store in its own temp dir) over a flushed Redis:

  (a) bulk JSON      one `POST /api/tasks/bulk` holding every item in one JSON array
  (b) upload JSONL   one `POST /api/tasks/upload` streaming a JSONL body (chunked request)
  (c) CLI chunks     the `dts submit` code path: a JSONL file, sent 5,000 items a request

For each: wall time, items/s accepted and enqueued, the control plane's idle and peak RSS
(`VmHWM`), and a check that the plugin's Redis queue holds one message per task (one per
batch for a batch plugin) and `GET /api/tasks/counts` shows N queued (the run fails when
either is off). The baseline, measured in the same run against the same Redis: Celery's own
`send_task` loop publishing N task-id messages from this process, on one shared producer
(what TaskPublisher does; run first and again last, ratios use the mean) and per call (what
`apply_async` does); with kombu >= 5.7 also inside `Producer.batch()` (pipelined LPUSHes),
to show the headroom. Rates are reported as ratios of those. The streaming upload is
repeated at N/10 items to show its peak memory does not grow with N.

`--profile` adds a pass of (a) and (b) under py-spy (`--profile-items`, default 20,000; pass
`--py-spy PATH` when it is not on PATH) and prints where the control plane's request time
goes, sample by sample; the timed rows are never profiled.

Run from the repo root (ten minutes or so at the default 100,000 items):

    .venv/bin/python -m bench.bulk_submit
    .venv/bin/python -m bench.bulk_submit --items 2000 --profile --py-spy /tmp/pyspy/bin/py-spy

It starts its own redis-server and control planes on free ports and stops them at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if __package__ in (None, ""):  # `python bench/bulk_submit.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import redis
from celery import Celery
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from bench.common import (
    MANIFEST_PATH,
    PLUGIN_ID,
    PLUGIN_QUEUE,
    PRODUCTION_TIMERS,
    console,
    domain_items,
    fmt,
    peak_rss_mib,
    ratio,
    register_plugin,
    rss_mib,
)
from control_plane.cli.api_client import AdminClient
from control_plane.cli.settings import CliSettings
from control_plane.cli.submit import CHUNK as CLI_CHUNK
from control_plane.cli.submit import submit_file
from task_contract.messages import RUN_TASK
from tests.support.processes import ADMIN_TOKEN, ControlPlane, RedisServer

TASK_TYPE = "domain"
HTTP_TIMEOUT = 1800.0
UPLOAD_LINES_PER_CHUNK = 1000


BATCH_SIZE: int | None = (json.loads(MANIFEST_PATH.read_text()).get("batch") or {}).get("max_items")
"""The example plugin's batch size: the broker then holds one message per batch."""


@dataclass
class Case:
    """One timed submission on a fresh control plane."""

    label: str
    items: int
    seconds: float
    queue_length: int
    queued: int
    idle_rss_mib: float
    peak_rss_mib: float

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    @property
    def expected_messages(self) -> int:
        # A batch plugin gets one message per batch (submission chunks hold whole batches).
        return math.ceil(self.items / BATCH_SIZE) if BATCH_SIZE else self.items

    @property
    def queue_ok(self) -> bool:
        return self.queue_length == self.expected_messages

    @property
    def counts_ok(self) -> bool:
        return self.queued == self.items


@dataclass
class Profile:
    label: str
    samples: Counter[str] = field(default_factory=Counter)


Submit = Callable[[ControlPlane], int]
"""Sends the items to a running control plane; returns how many it says it accepted."""


# ---------------------------------------------------------------- the three ways to submit


def bulk_json(count: int) -> Submit:
    body = json.dumps(
        {
            "type": TASK_TYPE,
            "plugin_id": PLUGIN_ID,
            "plugin_parameters": {},
            "items": list(domain_items(count)),
        }
    ).encode()

    def submit(plane: ControlPlane) -> int:
        with plane.admin() as client:
            reply = client.post(
                "/api/tasks/bulk",
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=HTTP_TIMEOUT,
            )
        return _accepted(reply)

    return submit


def upload_jsonl(count: int) -> Submit:
    def body() -> Iterator[bytes]:
        lines: list[str] = []
        for item in domain_items(count):
            lines.append(json.dumps(item))
            if len(lines) == UPLOAD_LINES_PER_CHUNK:
                yield ("\n".join(lines) + "\n").encode()
                lines = []
        if lines:
            yield ("\n".join(lines) + "\n").encode()

    def submit(plane: ControlPlane) -> int:
        with plane.admin() as client:
            reply = client.post(
                "/api/tasks/upload",
                params={"plugin_id": PLUGIN_ID, "type": TASK_TYPE, "format": "jsonl"},
                content=body(),  # an iterator: httpx sends it chunked, never all in memory
                headers={"Content-Type": "application/x-ndjson"},
                timeout=HTTP_TIMEOUT,
            )
        return _accepted(reply)

    return submit


def cli_chunks(count: int, work: Path) -> Submit:
    path = work / f"items-{count}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for item in domain_items(count):
            handle.write(json.dumps(item) + "\n")

    def submit(plane: ControlPlane) -> int:
        settings = CliSettings(DTS_SERVER=plane.url, DTS_ADMIN_TOKEN=SecretStr(ADMIN_TOKEN))
        client = AdminClient(settings, timeout=HTTP_TIMEOUT)
        try:
            quiet = Console(file=io.StringIO())  # no progress bar in the benchmark's output
            reply = submit_file(client, path, PLUGIN_ID, TASK_TYPE, "jsonl", None, {}, quiet)
        finally:
            client.close()
        return int(reply["accepted"])

    return submit


def _accepted(reply: httpx.Response) -> int:
    if reply.status_code != 202:
        raise RuntimeError(f"submission failed ({reply.status_code}): {reply.text[:500]}")
    return int(reply.json()["accepted"])


# ---------------------------------------------------------------- running a case


def run_case(
    redis_server: RedisServer,
    work: Path,
    label: str,
    count: int,
    submit: Submit,
    py_spy: str | None = None,
) -> tuple[Case, Profile | None]:
    broker = redis.Redis(port=redis_server.port)
    broker.flushall()
    case_dir = Path(tempfile.mkdtemp(prefix="case-", dir=work))
    plane = ControlPlane(redis_server.port, case_dir / "data", case_dir, **PRODUCTION_TIMERS)
    profiler: subprocess.Popen[bytes] | None = None
    profile_path = case_dir / "py-spy.txt"
    try:
        plane.start()
        assert plane.popen is not None
        pid = plane.popen.pid
        with plane.admin() as client:
            register_plugin(client)
        idle = rss_mib(pid)
        if py_spy:
            profiler = _start_py_spy(py_spy, pid, profile_path)
        started = time.perf_counter()
        accepted = submit(plane)
        seconds = time.perf_counter() - started
        if profiler:
            _stop_py_spy(profiler)
            profiler = None
        peak = peak_rss_mib(pid)
        if accepted != count:
            raise RuntimeError(f"{label}: the control plane accepted {accepted} of {count} items")
        with plane.admin() as client:
            counts = client.get("/api/tasks/counts", params={"plugin_id": PLUGIN_ID}).json()
        case = Case(
            label=label,
            items=count,
            seconds=seconds,
            queue_length=int(broker.llen(PLUGIN_QUEUE)),
            queued=int(counts["queued"]),
            idle_rss_mib=idle,
            peak_rss_mib=peak,
        )
    finally:
        if profiler:
            _stop_py_spy(profiler)
        plane.stop()
        broker.close()
    profile = Profile(label, _read_profile(profile_path)) if py_spy else None
    return case, profile


# ---------------------------------------------------------------- the Celery baseline


BaselineMode = Literal["shared", "per_call", "batched"]
BASELINES: dict[BaselineMode, str] = {
    "shared": "send_task, shared producer",
    "per_call": "send_task per call (apply_async)",
    "batched": "send_task in Producer.batch()",
}


def batch_supported() -> bool:
    """kombu >= 5.7 can pipeline a producer's publishes (`Producer.batch`)."""
    from kombu import Producer

    return hasattr(Producer, "batch")


def celery_baseline(redis_server: RedisServer, count: int, mode: BaselineMode) -> float:
    """Seconds for Celery alone to publish `count` task-id messages to a Redis queue.

    shared: one producer for every message (what TaskPublisher.publish does);
    per_call: each send_task acquires a producer from the pool (what apply_async does);
    batched: shared producer inside kombu's `Producer.batch()`, which pipelines the LPUSHes
    (for information: how fast publishing can go with the same libraries).
    """
    broker = redis.Redis(port=redis_server.port)
    broker.flushall()
    app = Celery("bench-baseline", broker=f"redis://127.0.0.1:{redis_server.port}/0")
    app.conf.update(
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
    )
    queue = "bench_baseline"
    ids = [uuid.uuid4().hex for _ in range(count)]
    options: dict[str, Any] = {"queue": queue, "routing_key": queue, "ignore_result": True}
    try:
        started = time.perf_counter()
        if mode == "per_call":
            for task_id in ids:
                app.send_task(RUN_TASK, args=[task_id], task_id=task_id, **options)
        else:
            with app.producer_or_acquire() as producer:
                batch = producer.batch() if mode == "batched" else contextlib.nullcontext()
                with batch:
                    for task_id in ids:
                        app.send_task(
                            RUN_TASK, args=[task_id], task_id=task_id, producer=producer, **options
                        )
        seconds = time.perf_counter() - started
        length = int(broker.llen(queue))
        if length != count:
            raise RuntimeError(f"baseline {mode}: queue holds {length} messages, not {count}")
        return seconds
    finally:
        app.close()
        broker.flushall()
        broker.close()


# ---------------------------------------------------------------- py-spy


def _start_py_spy(py_spy: str, pid: int, output: Path) -> subprocess.Popen[bytes]:
    profiler = subprocess.Popen(
        [
            *(py_spy, "record", "--pid", str(pid), "--rate", "200"),
            *("--format", "raw", "--nolineno", "--output", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach before the request starts
    return profiler


def _stop_py_spy(profiler: subprocess.Popen[bytes]) -> None:
    if profiler.poll() is None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            profiler.wait(30)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait(10)


IDLE = "(idle: event loop select, waiting threads)"
_IDLE_LEAVES = {"EpollSelector.select", "Condition.wait", "Event.wait", "select", "sleep"}

# py-spy frames read "Qualified.name (path/file.py)". Checked root first, so time inside one
# of these is charged to it whatever it calls; `detail` splits it by a frame further down.
_WHERE: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "TaskPublisher.publish",
        "publish: Celery/kombu message building",
        [
            ("Channel._create_client", "publish: kombu makes a redis.Redis client per message"),
            ("ListCommands.lpush", "publish: LPUSH round trip to Redis"),
        ],
    ),
    (
        "SqliteStore.insert_tasks",
        "store insert: SQLite executemany + commit",
        [("_task_row", "store insert: encode rows (JSON, timestamps)")],
    ),
    ("Submission._new_task", "build task records (ids, timestamps)", []),
    ("_validate", "upload: first pass over the body (validate every line)", []),
    ("parse_items", "upload: parse JSONL lines (second pass)", []),
]
# Only when none of the above is on the stack: the request around submit_many.
_AROUND: list[tuple[str, str]] = [
    ("loads", "request body: JSON parse"),
    ("request_body_to_args", "request body: pydantic validation"),
    ("_validate_value_with_model_field", "request body: pydantic validation"),
    ("Request.body", "request body: read"),
    ("Request.stream", "request body: read"),
    ("upload_items", "upload: receive the body, spool it to a temp file"),
    ("serialize_response", "response serialisation"),
]


def _read_profile(path: Path) -> Counter[str]:
    where: Counter[str] = Counter()
    if not path.exists():
        return where
    for line in path.read_text(errors="replace").splitlines():
        stack, _, raw_count = line.rpartition(" ")
        if not stack or not raw_count.isdigit():
            continue
        names = [frame.split(" (", 1)[0] for frame in stack.split(";")]
        where[_category(names)] += int(raw_count)
    return where


def _category(names: list[str]) -> str:
    for name in names:  # root first
        for function, label, detail in _WHERE:
            if name == function:
                for inner, inner_label in detail:
                    if inner in names:
                        return inner_label
                return label
    if names[-1] in _IDLE_LEAVES:
        return IDLE
    for function, label in _AROUND:
        if function in names:
            return label
    return "other (HTTP server, event loop, background threads)"


# ---------------------------------------------------------------- output


def print_results(
    cases: list[Case],
    baselines: dict[BaselineMode, list[float]],
    count: int,
    small: Case,
    large: Case,
) -> None:
    rates = {mode: count / statistics.fmean(runs) for mode, runs in baselines.items()}
    table = Table(
        title=f"Bulk submission of {count:,} items (baselines: Celery alone, same run, same Redis)",
        caption="vs X = items/s / baseline X's items/s; shared baseline ran first and last",
    )
    table.add_column("path", no_wrap=True)
    for name in ("items", "wall s", "items/s"):
        table.add_column(name, justify="right", no_wrap=True)
    for mode in rates:
        table.add_column(f"vs {mode.replace('_', ' ')}", justify="right", no_wrap=True)
    table.add_column("queue=N", justify="center", no_wrap=True)
    table.add_column("counts=N", justify="center", no_wrap=True)
    table.add_column("idle RSS MiB", justify="right")
    table.add_column("peak RSS MiB", justify="right")
    for mode, runs in baselines.items():
        table.add_row(
            f"baseline: {BASELINES[mode]}",
            f"{count:,}",
            " / ".join(fmt(seconds) for seconds in runs),
            fmt(rates[mode], 0),
            *(ratio(rates[mode], base) for base in rates.values()),
            "✓",
            "-",
            "-",
            "-",
        )
    table.add_section()
    for case in cases:
        table.add_row(
            case.label,
            f"{case.items:,}",
            fmt(case.seconds),
            fmt(case.rate, 0),
            *(ratio(case.rate, base) for base in rates.values()),
            _mark(case.queue_ok, case.queue_length),
            _mark(case.counts_ok, case.queued),
            fmt(case.idle_rss_mib, 1),
            fmt(case.peak_rss_mib, 1),
        )
    console.print(table)

    memory = Table(title="Streaming upload: control-plane memory against item count")
    for name in ("items", "idle RSS MiB", "peak RSS MiB", "peak - idle MiB"):
        memory.add_column(name, justify="right")
    for case in (small, large):
        memory.add_row(
            f"{case.items:,}",
            fmt(case.idle_rss_mib, 1),
            fmt(case.peak_rss_mib, 1),
            fmt(case.peak_rss_mib - case.idle_rss_mib, 1),
        )
    memory.add_section()
    memory.add_row(
        f"ratio {large.items // small.items}x items",
        ratio(large.idle_rss_mib, small.idle_rss_mib),
        ratio(large.peak_rss_mib, small.peak_rss_mib),
        ratio(large.peak_rss_mib - large.idle_rss_mib, small.peak_rss_mib - small.idle_rss_mib),
    )
    console.print(memory)


def print_profiles(profiles: list[Profile]) -> None:
    labels: list[str] = []
    for profile in profiles:
        for label, _ in profile.samples.most_common():
            if label not in labels and label != IDLE:
                labels.append(label)
    table = Table(
        title="Where the control plane's time goes (py-spy, separate pass; idle samples left out)",
        caption="a sample is charged to the outermost listed function on its stack",
    )
    table.add_column("part")
    for profile in profiles:
        table.add_column(f"{profile.label}\n% of busy samples", justify="right")
    busy = [sum(profile.samples.values()) - profile.samples[IDLE] for profile in profiles]
    for label in labels:
        cells = [
            fmt(100 * profile.samples[label] / (total or 1), 1)
            for profile, total in zip(profiles, busy, strict=True)
        ]
        table.add_row(label, *cells)
    table.add_section()
    table.add_row("busy samples (200 Hz)", *(f"{total:,}" for total in busy))
    console.print(table)


def _mark(ok: bool, actual: int) -> str:
    return "✓" if ok else f"✗ {actual:,}"


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bulk_submit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--items", type=int, default=100_000, help="items per submission")
    parser.add_argument(
        "--profile", action="store_true", help="add a py-spy pass of (a) and (b) (not timed)"
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy executable")
    parser.add_argument(
        "--profile-items", type=int, default=20_000, help="items in each profiled pass"
    )
    args = parser.parse_args(argv)
    count: int = args.items
    small_count = max(count // 10, 1)
    if args.profile and not args.py_spy:
        parser.error("--profile needs py-spy: pip install py-spy, or pass --py-spy PATH")

    with tempfile.TemporaryDirectory(prefix="dts-bench-bulk-") as tmp:
        work = Path(tmp)
        redis_server = RedisServer(work)
        try:
            redis_server.start()
            console.print(f"[bold]baseline[/]: Celery publishing {count:,} messages ...")
            modes: list[BaselineMode] = ["shared", "per_call"]
            if batch_supported():
                modes.append("batched")
            baselines = {mode: [celery_baseline(redis_server, count, mode)] for mode in modes}
            ways: list[tuple[str, Submit]] = [
                ("(a) bulk JSON, 1 request", bulk_json(count)),
                ("(b) upload JSONL, streamed", upload_jsonl(count)),
                (f"(c) CLI, {CLI_CHUNK:,} a request", cli_chunks(count, work)),
            ]
            cases: list[Case] = []
            for label, submit in ways:
                console.print(f"[bold]{label}[/]: {count:,} items ...")
                cases.append(run_case(redis_server, work, label, count, submit)[0])
            console.print(f"[bold]upload JSONL[/] at {small_count:,} items (memory check) ...")
            small, _ = run_case(
                redis_server, work, "(b) upload", small_count, upload_jsonl(small_count)
            )
            # Again at the end: the ratios use the mean, so load drift during the run shows
            # here instead of silently skewing them.
            console.print("[bold]baseline[/] again: Celery send_task, shared producer ...")
            baselines["shared"].append(celery_baseline(redis_server, count, "shared"))
            profiles: list[Profile] = []
            if args.profile:
                profiled = min(args.profile_items, count)
                for label, make in (
                    ("(a) bulk JSON", bulk_json),
                    ("(b) upload JSONL", upload_jsonl),
                ):
                    console.print(f"[bold]profiling[/] {label} with py-spy, {profiled:,} items ...")
                    _, profile = run_case(
                        redis_server,
                        work,
                        f"{label}, {profiled:,} items",
                        profiled,
                        make(profiled),
                        py_spy=args.py_spy,
                    )
                    assert profile is not None
                    profiles.append(profile)
        finally:
            redis_server.stop()

    print_results(cases, baselines, count, small, cases[1])
    if profiles:
        print_profiles(profiles)
    bad = [c for c in [*cases, small] if not (c.queue_ok and c.counts_ok)]
    if bad:
        for case in bad:
            console.print(
                f"[bold red]FAILED[/] {case.label}: queue holds {case.queue_length:,}, "
                f"counts show {case.queued:,} queued, expected {case.expected_messages:,} "
                f"messages and {case.items:,} queued"
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
