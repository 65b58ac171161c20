"""Run one plugin container under the v1 file contract and judge what it left behind.

Contract (v1, never break): the container reads `/input/input.json` and
`/input/parameters.json`, writes `/output/result.json`, exits 0 on success and
non-zero with error text on stderr on failure. `DTS_TASK_ID` and `DTS_TASK_TYPE`
are set in its environment.

The container-level steps (`_run_container`) know nothing about tasks or results,
so a later batch mode (one container over many items) can reuse them with a
different input layout and a different judge.

No Qt, Celery or HTTP here: the worker and the tray call into this module.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import shutil
import stat
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from desktop_agent.engine.batch_results import (
    RESULTS_FILE,
    BatchRun,
    judge_batch,
    write_batch_inputs,
)
from desktop_agent.engine.errors import ImageMissingError, RunInterruptedError
from task_contract.api import STDERR_LIMIT, FailureKind, TaskAssignment, TaskOutcome
from task_contract.json_values import JsonValueError, check_json_value
from task_contract.manifest import PluginLimits

log = logging.getLogger(__name__)

RESULT_LIMIT = 16 * 1024 * 1024
"""Largest /output/result.json accepted: results travel to the control plane over REST."""

TMPFS_SIZE = "64m"
ERROR_LIMIT = 4000  # TaskOutcome.error's max_length
_LINE_LIMIT = 500  # one stderr line quoted in an error message
_PREVIEW_BYTES = 80  # bytes of an invalid result quoted back to the user

# How long the agent waits on Docker for housekeeping calls that should be quick.
_KILL_WAIT_SECONDS = 10
_SIGKILL_EXIT = 128 + 9

_STDOUT_MARKER = "--- stdout (tail) ---"
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

_DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


@dataclass(frozen=True)
class RunLimits:
    """What one container may use. `cpus=None` means no CPU cap."""

    cpus: float | None
    memory_mb: int
    timeout_seconds: float
    pids_limit: int = 256
    network: bool = False

    @classmethod
    def from_plugin(
        cls,
        plugin: PluginLimits,
        *,
        default_memory_mb: int,
        default_timeout_seconds: float,
        cpus: float | None = None,
        pids_limit: int = 256,
    ) -> RunLimits:
        """Plugin declarations win; the agent's defaults fill what it leaves out.

        `cpus` is the agent user's own CPU limit, never the plugin's to raise.
        """
        return cls(
            cpus=cpus,
            memory_mb=plugin.memory_mb or default_memory_mb,
            timeout_seconds=float(plugin.timeout_seconds or default_timeout_seconds),
            pids_limit=pids_limit,
            network=plugin.network,
        )


@dataclass(frozen=True)
class _RunDir:
    root: Path
    input: Path
    output: Path


@dataclass(frozen=True)
class _ContainerRun:
    """What Docker tells us about a finished (or killed) container."""

    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    stderr: str
    stdout: str
    duration_seconds: float


class DockerExecutor:
    """Runs plugin containers hardened by default and turns each run into a TaskOutcome.

    Thread-safe: several `run` calls may proceed at once (one per worker slot).
    `labels` identify this agent's containers; `remove_leftovers` and `kill_all`
    act on every container carrying all of them.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        work_dir: Path,
        labels: dict[str, str],
        user: str = "65534:65534",
        pull_missing: bool = True,
    ) -> None:
        if not labels:
            # An empty label filter matches every container on the machine.
            raise ValueError("labels must not be empty: they select this agent's containers")
        self._client = client
        self._work_dir = Path(work_dir)
        self._labels = dict(labels)
        self._user = user
        self._pull_missing = pull_missing
        self._stopping = threading.Event()

    # ----------------------------------------------------------------- public API

    def run(self, assignment: TaskAssignment, limits: RunLimits) -> TaskOutcome:
        """Run one task's container and classify the outcome.

        Plugin failures and Docker errors come back as a failed TaskOutcome.
        Raises RunInterruptedError when `kill_all` stopped (or prevented) the run.
        """
        if self._stopping.is_set():
            raise RunInterruptedError("the agent is shutting down; not starting a new run")
        try:
            self.ensure_image(assignment.docker_image)
        except ImageMissingError as exc:
            return _failed(assignment, FailureKind.image_missing, str(exc))
        except _DOCKER_ERRORS as exc:
            return _agent_error(assignment, exc)

        run_dir = self._make_run_dir(assignment)
        try:
            _write_inputs(run_dir, assignment)
            run = self._run_container(
                image=assignment.docker_image,
                run_dir=run_dir,
                name=_container_name(assignment),
                env={
                    "DTS_TASK_ID": assignment.task_id,
                    "DTS_TASK_TYPE": assignment.type,
                    # Root fs is read-only and uid 65534 has no home: give libraries
                    # that cache under ~ somewhere writable.
                    "HOME": "/tmp",
                },
                labels={"dts.task_id": assignment.task_id, "dts.attempt": str(assignment.attempt)},
                limits=limits,
            )
            return _judge(run, run_dir.output, assignment, limits)
        except _DOCKER_ERRORS as exc:
            return _agent_error(assignment, exc)
        finally:
            _remove_tree(run_dir.root)

    def run_batch(
        self, assignments: list[TaskAssignment], limits: RunLimits
    ) -> dict[str, TaskOutcome]:
        """Run one container over several tasks under the batch contract.

        All assignments share the plugin image and parameters (the runner groups them).
        Returns one outcome per task id; raises RunInterruptedError like `run`.
        """
        if self._stopping.is_set():
            raise RunInterruptedError("the agent is shutting down; not starting a new run")
        first = assignments[0]
        try:
            self.ensure_image(first.docker_image)
        except ImageMissingError as exc:
            return {a.task_id: _failed(a, FailureKind.image_missing, str(exc)) for a in assignments}
        except _DOCKER_ERRORS as exc:
            return {a.task_id: _agent_error(a, exc) for a in assignments}

        run_dir = self._make_run_dir(first)
        try:
            write_batch_inputs(run_dir.input, assignments)
            run = self._run_container(
                image=first.docker_image,
                run_dir=run_dir,
                name=_container_name(first) + "-batch",
                env={"HOME": "/tmp"},
                labels={"dts.batch": first.task_id, "dts.items": str(len(assignments))},
                limits=limits,
            )
            try:
                raw = _read_output(run_dir.output / RESULTS_FILE, "/output/" + RESULTS_FILE)
                problem = None
            except _ResultProblem as exc:
                raw, problem = None, str(exc)
            return judge_batch(
                assignments,
                BatchRun(
                    exit_code=run.exit_code,
                    oom_killed=run.oom_killed,
                    timed_out=run.timed_out,
                    logs=_combined_logs(run.stderr, run.stdout),
                    last_stderr_line=_last_line(run.stderr),
                    duration_seconds=run.duration_seconds,
                    results=raw,
                    results_problem=problem,
                ),
                timeout_seconds=limits.timeout_seconds,
                memory_mb=limits.memory_mb,
            )
        except _DOCKER_ERRORS as exc:
            return {a.task_id: _agent_error(a, exc) for a in assignments}
        finally:
            _remove_tree(run_dir.root)

    def ensure_image(self, image: str) -> None:
        """Make sure `image` is present, pulling it if allowed.

        Raises ImageMissingError (with what to do) when it is absent and cannot be pulled.
        Other Docker errors (engine down) propagate.
        """
        try:
            self._client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        if not self._pull_missing:
            raise ImageMissingError(_missing_image_text(image, "pulling is disabled on this agent"))
        log.info("pulling image %s", image)
        try:
            self._client.images.pull(image)
        except docker.errors.DockerException as exc:
            raise ImageMissingError(_missing_image_text(image, _docker_error_text(exc))) from exc

    def remove_leftovers(self) -> int:
        """Remove containers with this executor's labels, e.g. left by an agent killed mid-task.

        Call at startup, before any run: it also removes containers of runs in progress.
        """
        removed = 0
        for container in self._own_containers(all=True):
            if _force_remove(container):
                removed += 1
        if removed:
            log.info("removed %d leftover plugin container(s)", removed)
        return removed

    def kill_all(self) -> int:
        """Shutdown: kill this executor's running containers and refuse new runs.

        Interrupted `run` calls raise RunInterruptedError so their tasks are redelivered
        rather than reported as plugin failures. Returns how many containers were killed.
        """
        self._stopping.set()
        killed = 0
        for container in self._own_containers(all=False):
            if _kill_running(container):
                killed += 1
        return killed

    # ------------------------------------------------------------ container steps

    def _own_containers(self, *, all: bool) -> list[Any]:
        label_filter = [f"{key}={value}" for key, value in self._labels.items()]
        return list(self._client.containers.list(all=all, filters={"label": label_filter}))

    def _make_run_dir(self, assignment: TaskAssignment) -> _RunDir:
        self._work_dir.mkdir(parents=True, exist_ok=True)
        name = f"{_safe(assignment.task_id)}-{assignment.attempt}-{secrets.token_hex(4)}"
        root = self._work_dir / name
        root.mkdir(mode=0o700)
        run_dir = _RunDir(root=root, input=root / "input", output=root / "output")
        run_dir.input.mkdir()
        run_dir.output.mkdir()
        # The container runs as an unprivileged uid that owns neither directory; explicit
        # chmod because mkdir's mode is filtered through the agent's umask.
        run_dir.input.chmod(0o755)
        run_dir.output.chmod(0o777)
        return run_dir

    def _run_container(
        self,
        *,
        image: str,
        run_dir: _RunDir,
        name: str,
        env: dict[str, str],
        labels: dict[str, str],
        limits: RunLimits,
    ) -> _ContainerRun:
        container = self._client.containers.create(
            image,
            name=name,
            detach=True,
            environment=env,
            labels={**labels, **self._labels},
            volumes={
                str(run_dir.input): {"bind": "/input", "mode": "ro"},
                str(run_dir.output): {"bind": "/output", "mode": "rw"},
            },
            log_config=docker.types.LogConfig(
                # Bounds what a chatty plugin can put on the agent's disk; we only keep
                # the tail anyway.
                type="json-file",
                config={"max-size": "1m", "max-file": "1"},
            ),
            **_hardening(limits, self._user),
        )
        try:
            return self._start_and_wait(container, limits)
        finally:
            _force_remove(container)

    def _start_and_wait(self, container: Any, limits: RunLimits) -> _ContainerRun:
        started = time.monotonic()
        container.start()
        # kill_all sets the flag before it lists containers: one started after that
        # listing is caught here instead of running on through the shutdown.
        if self._stopping.is_set():
            _kill(container)
            raise RunInterruptedError("the agent is shutting down; run stopped at start")
        timed_out = False
        try:
            container.wait(timeout=limits.timeout_seconds)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            # The SDK reports an HTTP read timeout as either type, but a ConnectionError
            # before the deadline is the engine going away, not the plugin being slow.
            if time.monotonic() - started < limits.timeout_seconds:
                raise
            timed_out = True
            _kill(container)
        duration = time.monotonic() - started
        container.reload()
        state = container.attrs.get("State", {})
        exit_code = state.get("ExitCode")
        oom_killed = bool(state.get("OOMKilled"))
        # A plugin that finished on its own just before shutdown keeps its outcome.
        if self._stopping.is_set() and exit_code == _SIGKILL_EXIT and not oom_killed:
            raise RunInterruptedError("the agent shut down while the plugin was running")
        return _ContainerRun(
            exit_code=None if timed_out else exit_code,
            oom_killed=oom_killed,
            timed_out=timed_out,
            stderr=_log_tail(container, stderr=True),
            stdout=_log_tail(container, stderr=False),
            duration_seconds=round(duration, 3),
        )


# ------------------------------------------------------------------ module helpers


def _hardening(limits: RunLimits, user: str) -> dict[str, Any]:
    """docker create options that confine the plugin; on by default, loosened only by limits."""
    memory = limits.memory_mb * 1024 * 1024
    options: dict[str, Any] = {
        "network_mode": "bridge" if limits.network else "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMPFS_SIZE},mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids_limit,
        "mem_limit": memory,
        "memswap_limit": memory,  # equal to mem_limit: no swap, so OOM is prompt and visible
        "user": user,
        "init": False,
        "auto_remove": False,  # we read state and logs before removing it ourselves
    }
    if limits.cpus is not None:
        options["nano_cpus"] = int(limits.cpus * 1_000_000_000)
    return options


def _write_inputs(run_dir: _RunDir, assignment: TaskAssignment) -> None:
    files = {
        "input.json": assignment.data,
        "parameters.json": assignment.parameters,
    }
    for filename, value in files.items():
        path = run_dir.input / filename
        path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        path.chmod(0o644)


def _judge(
    run: _ContainerRun, output_dir: Path, assignment: TaskAssignment, limits: RunLimits
) -> TaskOutcome:
    """Classify a finished container under the v1 contract."""
    common: dict[str, Any] = {
        "exit_code": run.exit_code,
        "stderr": _combined_logs(run.stderr, run.stdout),
        "duration_seconds": run.duration_seconds,
        "attempt": assignment.attempt,
    }
    if run.timed_out:
        timeout = f"{limits.timeout_seconds:g}"
        return _outcome_failed(
            FailureKind.timeout,
            f"plugin exceeded its {timeout} s timeout; raise limits.timeout_seconds in the "
            "plugin manifest or split the item",
            common,
        )
    if run.oom_killed:
        return _outcome_failed(
            FailureKind.out_of_memory,
            f"plugin ran out of memory (limit {limits.memory_mb} MiB); raise "
            "limits.memory_mb in the plugin manifest or process smaller items",
            common,
        )
    if run.exit_code != 0:
        last = _last_line(run.stderr)
        detail = f": {last}" if last else " (nothing on stderr)"
        return _outcome_failed(
            FailureKind.exit_nonzero, f"plugin exited with code {run.exit_code}{detail}", common
        )
    try:
        result = _read_result(output_dir / "result.json")
    except _ResultProblem as problem:
        return _outcome_failed(problem.kind, str(problem), common)
    return TaskOutcome(succeeded=True, result=result, **common)


class _ResultProblem(Exception):
    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _read_output(path: Path, shown: str) -> bytes | None:
    """Read a file the plugin wrote, without trusting it; None when it does not exist."""
    try:
        # O_NOFOLLOW: the container owns /output and could plant a symlink to a host file
        # (the agent's credentials, say) that we would otherwise read and upload.
        # O_NONBLOCK: a planted FIFO would otherwise block the open forever.
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except FileNotFoundError:
        return None
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise _ResultProblem(
            FailureKind.invalid_result, f"{shown} cannot be read ({reason}); write a regular file"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _ResultProblem(
                FailureKind.invalid_result, f"{shown} is not a regular file; write a regular file"
            )
        raw = handle.read(RESULT_LIMIT + 1)
    if len(raw) > RESULT_LIMIT:
        raise _ResultProblem(
            FailureKind.invalid_result,
            f"{shown} is larger than {RESULT_LIMIT // (1024 * 1024)} MiB; "
            "return less per item or store bulk data elsewhere",
        )
    return raw


def _read_result(path: Path) -> Any:
    """Read and parse result.json (v1 contract)."""
    raw = _read_output(path, "/output/result.json")
    if raw is None:
        raise _ResultProblem(
            FailureKind.no_result, "plugin exited 0 but wrote no /output/result.json"
        )
    try:
        result = json.loads(raw, parse_constant=_reject_constant)
        check_json_value(result, "result")
        return result
    except JsonValueError as exc:
        raise _ResultProblem(
            FailureKind.invalid_result,
            f"/output/result.json holds a value that cannot be stored ({exc}); "
            "write plain JSON: finite numbers, 64-bit integers, UTF-8 text",
        ) from None
    except (ValueError, RecursionError) as exc:
        preview = raw[:_PREVIEW_BYTES].decode("utf-8", errors="replace")
        raise _ResultProblem(
            FailureKind.invalid_result,
            f"plugin exited 0 but /output/result.json is not valid JSON: {exc} "
            f"(first bytes: {preview!r})",
        ) from None


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are Python extensions, not JSON: the control plane could not store them.
    raise ValueError(f"{name} is not allowed in JSON")


def _failed(assignment: TaskAssignment, kind: FailureKind, message: str) -> TaskOutcome:
    return _outcome_failed(kind, message, {"attempt": assignment.attempt})


def _outcome_failed(kind: FailureKind, message: str, common: dict[str, Any]) -> TaskOutcome:
    return TaskOutcome(
        succeeded=False, failure_kind=kind, error=_clip(message, ERROR_LIMIT), **common
    )


def _log_tail(container: Any, *, stderr: bool) -> str:
    """The last STDERR_LIMIT bytes of one stream, read in chunks so memory stays bounded."""
    tail = bytearray()
    chunks: Iterable[bytes] = container.logs(stdout=not stderr, stderr=stderr, stream=True)
    for chunk in chunks:
        tail += chunk
        if len(tail) > 2 * STDERR_LIMIT:
            del tail[:-STDERR_LIMIT]
    data = bytes(tail[-STDERR_LIMIT:])
    if len(tail) > STDERR_LIMIT:
        data = _drop_partial_start(data)
    return data.decode("utf-8", errors="replace")


def _drop_partial_start(data: bytes) -> bytes:
    """Start a cut-off tail at a line start when one is near, else past a split UTF-8 char."""
    newline = data.find(b"\n", 0, 200)
    if newline >= 0:
        return data[newline + 1 :]
    return data.lstrip(_UTF8_CONTINUATION)


def _combined_logs(stderr: str, stdout: str) -> str | None:
    """The stderr tail, then the stdout tail under a marker, within TaskOutcome's 2x cap."""
    if not stdout:
        return stderr or None
    head = f"{stderr}\n{_STDOUT_MARKER}\n" if stderr else f"{_STDOUT_MARKER}\n"
    # Each tail is at most STDERR_LIMIT; the marker must not push the sum over the cap.
    room = 2 * STDERR_LIMIT - len(head)
    return head + stdout[-room:]


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return _clip(line.strip(), _LINE_LIMIT)
    return ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kill_running(container: Any, tries: int = 5) -> bool:
    """Kill a container listed as running. Right after start the engine can briefly answer
    409 "is not running" for a container that is; look again and retry then."""
    for attempt in range(tries):
        try:
            container.kill()
            return True
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or attempt == tries - 1:
                log.warning("could not kill container %s: %s", container.name, exc)
                return False
        except _DOCKER_ERRORS as exc:
            log.warning("could not kill container %s: %s", container.name, exc)
            return False
        time.sleep(0.2)
        try:
            container.reload()
        except _DOCKER_ERRORS:
            return False
        if container.status not in ("running", "created", "restarting"):
            return False
    return False


def _kill(container: Any) -> None:
    try:
        container.kill()
        container.wait(timeout=_KILL_WAIT_SECONDS)
    except docker.errors.APIError as exc:
        # 409: it exited on its own between the deadline and the kill.
        log.debug("kill of %s: %s", container.name, exc)


def _force_remove(container: Any) -> bool:
    try:
        container.remove(force=True)
        return True
    except docker.errors.NotFound:
        return False
    except _DOCKER_ERRORS as exc:
        log.warning("could not remove container %s: %s", getattr(container, "name", "?"), exc)
        return False


def _remove_tree(path: Path) -> None:
    def on_error(_func: Any, failed: str, _info: Any) -> None:
        # Files a plugin created under a subdirectory of /output belong to the container
        # uid; a non-root agent may be unable to delete them. Log, don't fail the task.
        log.warning("could not remove %s from the run directory", failed)

    if not path.exists():
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=on_error)
    else:
        shutil.rmtree(path, onerror=on_error)


def _container_name(assignment: TaskAssignment) -> str:
    # The suffix keeps names unique when the same attempt is delivered twice.
    return f"dts-{_safe(assignment.task_id)}-{assignment.attempt}-{secrets.token_hex(3)}"


def _safe(text: str) -> str:
    return _NAME_UNSAFE.sub("_", text)[:64] or "task"


def _missing_image_text(image: str, reason: str) -> str:
    return (
        f"image '{image}' is not on this machine and could not be pulled ({reason}): "
        f"build it with `docker build -t {image} <plugin directory>` or push it to a "
        "registry this agent can reach"
    )


def _docker_error_text(exc: BaseException) -> str:
    # APIError.explanation is the daemon's own message, without the HTTP preamble.
    explanation = getattr(exc, "explanation", None)
    return _clip(str(explanation or exc) or type(exc).__name__, _LINE_LIMIT)


def _agent_error(assignment: TaskAssignment, exc: BaseException) -> TaskOutcome:
    return _failed(assignment, FailureKind.agent_error, f"Docker error: {_docker_error_text(exc)}")
