"""DockerExecutor against the real Docker engine, with tiny plugin images built here.

One test image carries a script whose behaviour is picked by the `behaviour`
parameter, so the whole file needs a single (cached, sub-second) build.
"""

from __future__ import annotations

import contextlib
import secrets
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from desktop_agent.engine import executor as executor_module
from desktop_agent.engine.errors import RunInterruptedError
from desktop_agent.engine.executor import DockerExecutor, RunLimits
from task_contract.api import STDERR_LIMIT, FailureKind, TaskAssignment
from task_contract.manifest import PluginLimits
from tests.conftest import BASE_IMAGE

pytestmark = pytest.mark.docker

# Unique per session: other test sessions may share this Docker engine.
SESSION = secrets.token_hex(4)
LABELS = {"dts.test-session": SESSION}

PLUGIN_SCRIPT = textwrap.dedent(
    """
    import json, os, socket, sys, time

    params = json.load(open("/input/parameters.json"))
    data = json.load(open("/input/input.json"))
    behaviour = params["behaviour"]

    def write_result(value):
        with open("/output/result.json", "w") as f:
            json.dump(value, f)

    def try_write(path):
        try:
            with open(path, "w") as f:
                f.write("x")
            return "writable"
        except OSError as exc:
            return exc.strerror

    def status_field(name):
        for line in open("/proc/self/status"):
            if line.startswith(name + ":"):
                return line.split()[1]

    def read(path):
        try:
            return open(path).read().strip()
        except OSError as exc:
            return "error: " + exc.strerror

    def try_connect():
        try:
            socket.create_connection(("10.255.255.1", 80), timeout=2).close()
            return "connected"
        except OSError as exc:
            return type(exc).__name__ + ": " + str(exc)

    if behaviour == "compute":
        print("computing", file=sys.stderr)
        write_result({
            "total": sum(data["numbers"]) * params["factor"],
            "task_id": os.environ["DTS_TASK_ID"],
            "task_type": os.environ["DTS_TASK_TYPE"],
        })
    elif behaviour == "fail":
        print("starting", file=sys.stderr)
        print("ValueError: item 42 is not a domain", file=sys.stderr)
        print("", file=sys.stderr)
        sys.exit(3)
    elif behaviour == "no_result":
        pass
    elif behaviour == "garbage":
        with open("/output/result.json", "w") as f:
            f.write("{not json")
    elif behaviour == "symlink":
        os.symlink(params["target"], "/output/result.json")
    elif behaviour == "sleep":
        time.sleep(30)
    elif behaviour == "oom":
        hog = [b"x" * (10 * 1024 * 1024) for _ in range(20)]
        write_result(len(hog))
    elif behaviour == "stderr_flood":
        sys.stderr.write(("e" * 1023 + "\\n") * 1024)
        sys.stderr.write("LAST-LINE\\n")
        sys.exit(1)
    elif behaviour == "both_flood":
        sys.stdout.write("o" * 100000 + "STDOUT-END")
        sys.stderr.write("e" * 100000 + "STDERR-END")
        sys.exit(1)
    elif behaviour == "probe":
        interfaces = [line.split(":")[0].strip() for line in open("/proc/net/dev")][2:]
        write_result({
            "uid": os.getuid(),
            "gid": os.getgid(),
            "root_fs": try_write("/probe"),
            "input": try_write("/input/probe"),
            "tmp": try_write("/tmp/probe"),
            "interfaces": interfaces,
            "connect": try_connect(),
            "cap_eff": status_field("CapEff"),
            "no_new_privs": status_field("NoNewPrivs"),
            "memory_limit": read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
            "memsw_limit": read("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
            "cfs_quota": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
            "cfs_period": read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
            "pids_max": read("/sys/fs/cgroup/pids/pids.max"),
        })
    else:
        sys.exit("unknown behaviour " + behaviour)
    """
)


@pytest.fixture(scope="session")
def plugin_image(docker_client: docker.DockerClient, tmp_path_factory: Any) -> Iterator[str]:
    context = tmp_path_factory.mktemp("plugin")
    (context / "plugin.py").write_text(PLUGIN_SCRIPT)
    (context / "Dockerfile").write_text(
        f'FROM {BASE_IMAGE}\nCOPY plugin.py /plugin.py\nCMD ["/usr/bin/python3", "/plugin.py"]\n'
    )
    tag = f"dts-test-plugin:executor-{SESSION}"
    docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


@pytest.fixture
def executor(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[DockerExecutor]:
    work_dir = tmp_path / "runs"
    yield DockerExecutor(docker_client, work_dir, LABELS)
    # Every run cleans its own directory, whatever happened in it.
    assert not work_dir.exists() or list(work_dir.iterdir()) == []


def limits(**overrides: Any) -> RunLimits:
    values: dict[str, Any] = {"cpus": 1.0, "memory_mb": 128, "timeout_seconds": 20.0}
    values.update(overrides)
    return RunLimits(**values)


def assignment(image: str, behaviour: str, data: Any = None, **params: Any) -> TaskAssignment:
    return TaskAssignment(
        task_id=f"t{secrets.token_hex(4)}",
        plugin_id="test-plugin",
        plugin_version="1.0.0",
        docker_image=image,
        type="numbers",
        data=data if data is not None else {},
        parameters={"behaviour": behaviour, **params},
        limits=PluginLimits(),
        attempt=2,
    )


def session_containers(client: docker.DockerClient, task_id: str) -> list[Any]:
    filters = {"label": [f"dts.test-session={SESSION}", f"dts.task_id={task_id}"]}
    return list(client.containers.list(all=True, filters=filters))


def test_success_returns_what_the_plugin_computed(executor: DockerExecutor, plugin_image: str):
    task = assignment(plugin_image, "compute", data={"numbers": [1, 2, 3.5]}, factor=10)

    outcome = executor.run(task, limits())

    assert outcome.succeeded, outcome.error
    assert outcome.result == {"total": 65.0, "task_id": task.task_id, "task_type": "numbers"}
    assert outcome.failure_kind is None and outcome.error is None
    assert outcome.exit_code == 0
    assert outcome.attempt == 2
    assert outcome.stderr == "computing\n"
    assert outcome.duration_seconds is not None and outcome.duration_seconds > 0


def test_nonzero_exit_reports_code_and_last_stderr_line(
    executor: DockerExecutor, plugin_image: str
):
    outcome = executor.run(assignment(plugin_image, "fail"), limits())

    assert not outcome.succeeded
    assert outcome.failure_kind is FailureKind.exit_nonzero
    assert outcome.exit_code == 3
    assert outcome.error == "plugin exited with code 3: ValueError: item 42 is not a domain"
    assert outcome.stderr == "starting\nValueError: item 42 is not a domain\n\n"


def test_exit_zero_without_result_is_no_result(executor: DockerExecutor, plugin_image: str):
    outcome = executor.run(assignment(plugin_image, "no_result"), limits())

    assert outcome.failure_kind is FailureKind.no_result
    assert outcome.exit_code == 0
    assert outcome.error == "plugin exited 0 but wrote no /output/result.json"


def test_garbage_result_is_invalid_result(executor: DockerExecutor, plugin_image: str):
    outcome = executor.run(assignment(plugin_image, "garbage"), limits())

    assert outcome.failure_kind is FailureKind.invalid_result
    assert outcome.error is not None
    assert outcome.error.startswith(
        "plugin exited 0 but /output/result.json is not valid JSON: Expecting property name"
    )
    assert "(first bytes: '{not json')" in outcome.error


def test_result_symlink_to_a_host_file_is_not_followed(
    executor: DockerExecutor, plugin_image: str, tmp_path: Path
):
    secret = tmp_path / "agent-secret.json"
    secret.write_text('{"credential": "s3cr3t"}')

    outcome = executor.run(assignment(plugin_image, "symlink", target=str(secret)), limits())

    assert outcome.failure_kind is FailureKind.invalid_result
    assert outcome.result is None
    assert outcome.error == (
        "/output/result.json cannot be read (it is a symbolic link); write a regular file"
    )


def test_oversized_result_is_invalid_result(
    executor: DockerExecutor, plugin_image: str, monkeypatch: pytest.MonkeyPatch
):
    # The real cap is 16 MiB; a tiny one exercises the same path without writing 16 MiB.
    monkeypatch.setattr(executor_module, "RESULT_LIMIT", 10)
    task = assignment(plugin_image, "compute", data={"numbers": [1]}, factor=1)

    outcome = executor.run(task, limits())

    assert outcome.failure_kind is FailureKind.invalid_result
    assert outcome.error is not None and "/output/result.json is larger than" in outcome.error


def test_docker_api_error_is_agent_error(executor: DockerExecutor, plugin_image: str):
    # The engine rejects more CPUs than the machine has when creating the container.
    outcome = executor.run(assignment(plugin_image, "compute"), limits(cpus=4096))

    assert outcome.failure_kind is FailureKind.agent_error
    assert outcome.error is not None
    assert outcome.error.startswith("Docker error: ")
    assert "CPU" in outcome.error


def test_timeout_kills_and_removes_the_container(
    executor: DockerExecutor, plugin_image: str, docker_client: docker.DockerClient
):
    task = assignment(plugin_image, "sleep")
    started = time.monotonic()

    outcome = executor.run(task, limits(timeout_seconds=2))

    assert time.monotonic() - started < 10
    assert outcome.failure_kind is FailureKind.timeout
    assert outcome.error == (
        "plugin exceeded its 2 s timeout; raise limits.timeout_seconds in the plugin "
        "manifest or split the item"
    )
    assert outcome.exit_code is None
    assert session_containers(docker_client, task.task_id) == []


def test_memory_hog_is_out_of_memory(executor: DockerExecutor, plugin_image: str):
    outcome = executor.run(assignment(plugin_image, "oom"), limits(memory_mb=64))

    assert outcome.failure_kind is FailureKind.out_of_memory
    assert outcome.exit_code == 137
    assert outcome.error is not None
    assert outcome.error.startswith("plugin ran out of memory (limit 64 MiB)")


def test_missing_image_says_how_to_provide_it(executor: DockerExecutor):
    task = assignment("dts-no-such-image:0", "compute")

    outcome = executor.run(task, limits())

    assert outcome.failure_kind is FailureKind.image_missing
    assert outcome.error is not None
    assert outcome.error.startswith(
        "image 'dts-no-such-image:0' is not on this machine and could not be pulled ("
    )
    assert "docker build -t dts-no-such-image:0" in outcome.error
    assert outcome.attempt == 2


def test_hardening_is_in_force_inside_the_container(executor: DockerExecutor, plugin_image: str):
    outcome = executor.run(
        assignment(plugin_image, "probe"), limits(cpus=0.5, memory_mb=96, pids_limit=64)
    )

    assert outcome.succeeded, outcome.error
    probe = outcome.result
    assert (probe["uid"], probe["gid"]) == (65534, 65534)
    assert probe["root_fs"] == "Read-only file system"
    assert probe["input"] == "Read-only file system"
    assert probe["tmp"] == "writable"
    assert probe["interfaces"] == ["lo"]
    assert probe["connect"].startswith("OSError: [Errno 101]")  # network unreachable
    assert probe["cap_eff"] == "0000000000000000"
    assert probe["no_new_privs"] == "1"
    assert probe["memory_limit"] == str(96 * 1024 * 1024)
    assert probe["memsw_limit"] == str(96 * 1024 * 1024)  # no swap on top
    assert int(probe["cfs_quota"]) == int(probe["cfs_period"]) // 2
    assert probe["pids_max"] == "64"


def test_stderr_is_kept_bounded_to_its_tail(executor: DockerExecutor, plugin_image: str):
    outcome = executor.run(assignment(plugin_image, "stderr_flood"), limits())

    assert outcome.failure_kind is FailureKind.exit_nonzero
    assert outcome.error == "plugin exited with code 1: LAST-LINE"
    assert outcome.stderr is not None
    assert len(outcome.stderr) <= STDERR_LIMIT
    assert outcome.stderr.endswith("e\nLAST-LINE\n")
    assert len(outcome.stderr) > STDERR_LIMIT - 1024  # a tail, not a stub


def test_stdout_tail_follows_stderr_tail_within_the_outcome_cap(
    executor: DockerExecutor, plugin_image: str
):
    outcome = executor.run(assignment(plugin_image, "both_flood"), limits())

    assert outcome.failure_kind is FailureKind.exit_nonzero
    assert outcome.stderr is not None
    stderr_part, stdout_part = outcome.stderr.split("\n--- stdout (tail) ---\n")
    assert stderr_part.endswith("eSTDERR-END") and len(stderr_part) == STDERR_LIMIT
    assert stdout_part.endswith("oSTDOUT-END")
    assert len(outcome.stderr) == 2 * STDERR_LIMIT


def test_remove_leftovers_removes_only_this_executors_containers(
    executor: DockerExecutor, plugin_image: str, docker_client: docker.DockerClient
):
    command = ["/usr/bin/python3", "-c", "import time; time.sleep(60)"]
    ours = docker_client.containers.run(
        plugin_image, command, detach=True, labels={**LABELS, "dts.task_id": "left"}
    )
    foreign = docker_client.containers.run(
        plugin_image, command, detach=True, labels={"dts.test-session": "someone-else"}
    )
    try:
        assert executor.remove_leftovers() == 1

        with pytest.raises(docker.errors.NotFound):
            ours.reload()
        foreign.reload()
        assert foreign.status == "running"
    finally:
        for container in (ours, foreign):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def test_kill_all_interrupts_a_run_instead_of_failing_it(
    executor: DockerExecutor, plugin_image: str, docker_client: docker.DockerClient
):
    task = assignment(plugin_image, "sleep")
    raised: list[BaseException] = []

    def run() -> None:
        try:
            executor.run(task, limits())
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not [c for c in session_containers(docker_client, task.task_id) if c.status == "running"]:
        assert time.monotonic() < deadline, "container never started"
        time.sleep(0.1)

    assert executor.kill_all() == 1
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], RunInterruptedError)
    assert session_containers(docker_client, task.task_id) == []
    with pytest.raises(RunInterruptedError):
        executor.run(assignment(plugin_image, "compute"), limits())


def test_run_limits_from_plugin_prefers_the_manifest():
    declared = RunLimits.from_plugin(
        PluginLimits(timeout_seconds=30, memory_mb=512, network=True),
        default_memory_mb=256,
        default_timeout_seconds=600,
        cpus=1.5,
    )
    defaulted = RunLimits.from_plugin(
        PluginLimits(), default_memory_mb=256, default_timeout_seconds=600
    )

    assert declared == RunLimits(cpus=1.5, memory_mb=512, timeout_seconds=30.0, network=True)
    assert defaulted == RunLimits(cpus=None, memory_mb=256, timeout_seconds=600.0)
