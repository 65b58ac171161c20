"""Agents as real processes: dynamic queues, crashes, restarts, failure reports."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.api import register_behaviour_plugin, submit, task, wait_counts, wait_finished
from tests.support.processes import AgentProcess, ControlPlane, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def test_plugin_registered_after_agent_start_is_served_after_next_heartbeat(
    control_plane: ControlPlane, start_agent: Callable[..., AgentProcess], behaviour_image: str
) -> None:
    agent = start_agent()
    with control_plane.admin() as api:
        wait_for(lambda: api.get("/api/workers").json(), 30, "agent registration")
        register_behaviour_plugin(api, behaviour_image, plugin_id="late", queue="late_queue")
        task_id = submit(api, "late", {"n": 7})
        record = wait_finished(api, task_id, timeout=60)
    assert record["status"] == "succeeded", (record, agent.log_tail())
    assert record["result"] == {"echo": {"n": 7}, "mode": "ok"}
    assert record["attempts"] == 1


@pytest.mark.parametrize(
    ("mode", "kind", "message"),
    [
        ("crash", "exit_nonzero", "plugin exited with code 3: ValueError: cannot parse item 42"),
        ("noresult", "no_result", "plugin exited 0 but wrote no /output/result.json"),
        ("garbage", "invalid_result", "/output/result.json is not valid JSON"),
        ("hang", "timeout", "plugin exceeded its 3 s timeout"),
        ("inf", "invalid_result", "result.big: inf is not a JSON number"),
        ("oom", "out_of_memory", "plugin ran out of memory (limit 64 MiB)"),
    ],
)
def test_each_failure_kind_is_reported_with_its_message(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    behaviour_image: str,
    mode: str,
    kind: str,
    message: str,
) -> None:
    with control_plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image, timeout_seconds=3, memory_mb=64)
        start_agent()
        task_id = submit(api, "behaviour", {"n": 1}, mode=mode)
        record = wait_finished(api, task_id)
    assert record["status"] == "failed"
    assert record["failure_kind"] == kind
    assert message in record["error"]
    assert record["result"] is None
    if mode == "crash":
        assert record["exit_code"] == 3
        assert "ValueError: cannot parse item 42" in record["stderr"]


def test_missing_image_fails_with_what_to_do(
    control_plane: ControlPlane, start_agent: Callable[..., AgentProcess], behaviour_image: str
) -> None:
    with control_plane.admin() as api:
        register_behaviour_plugin(
            api, "dts-no-such-image:0", plugin_id="ghost", queue="ghost_queue"
        )
        start_agent()
        record = wait_finished(api, submit(api, "ghost", {"n": 1}))
    assert record["failure_kind"] == "image_missing"
    assert "dts-no-such-image:0" in record["error"]
    assert "docker build" in record["error"]


def test_agent_killed_mid_task_then_restarted_completes_it_once(
    control_plane: ControlPlane, start_agent: Callable[..., AgentProcess], behaviour_image: str
) -> None:
    with control_plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image)
        agent = start_agent(name="crashy", workers=1)
        task_id = submit(api, "behaviour", {"n": 3}, mode="slow", seconds=6)
        wait_for(lambda: task(api, task_id)["status"] == "running", 60, "task to start")
        first_worker = task(api, task_id)["worker_id"]
        agent.kill()
        restarted = start_agent(name="crashy", workers=1)
        record = wait_finished(api, task_id, timeout=90)
        assert record["status"] == "succeeded", restarted.log_tail()
        assert record["result"] == {"echo": {"n": 3}, "mode": "slow"}
        assert record["attempts"] == 2
        # Same data dir, same enrollment: the restarted agent is the same worker.
        assert record["worker_id"] == first_worker
        page = api.get("/api/tasks", params={"plugin_id": "behaviour"}).json()
        assert page["total"] == 1
        assert len(api.get("/api/workers").json()) == 1


def test_control_plane_restart_mid_run_loses_nothing(
    control_plane: ControlPlane, start_agent: Callable[..., AgentProcess], behaviour_image: str
) -> None:
    total = 12
    with control_plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image)
        start_agent(workers=2)
        ids = [submit(api, "behaviour", {"n": i}, mode="slow", seconds=1) for i in range(total)]
        wait_counts(api, 2, 60, plugin_id="behaviour")
    control_plane.kill()
    control_plane.start()
    with control_plane.admin() as api:
        counts = wait_counts(api, total, 120, plugin_id="behaviour")
        assert counts == {"queued": 0, "running": 0, "succeeded": total, "failed": 0}
        results = {task(api, i)["result"]["echo"]["n"] for i in ids}
    assert results == set(range(total))


def test_outcome_finished_while_control_plane_down_is_spooled_and_delivered_once(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    behaviour_image: str,
    tmp_path: Path,
) -> None:
    agent, task_id, spooled = _spool_while_control_plane_down(
        control_plane, start_agent, behaviour_image, tmp_path, "spooler", n=9, seconds=4
    )
    assert json.loads(spooled.read_text())["result"] == {"echo": {"n": 9}, "mode": "slow"}
    # Killed while it still holds the undelivered outcome and the unacked message.
    agent.kill()
    control_plane.start()
    start_agent(name="spooler", workers=1)
    with control_plane.admin() as api:
        record = wait_finished(api, task_id, timeout=60)
        assert record["status"] == "succeeded"
        assert record["result"] == {"echo": {"n": 9}, "mode": "slow"}
        assert record["attempts"] == 1  # delivered from the spool, not run again
        wait_for(lambda: not spooled.exists(), 30, "the spool to empty")
        assert api.get("/api/tasks/counts").json() == {
            "queued": 0,
            "running": 0,
            "succeeded": 1,
            "failed": 0,
        }


def test_second_agent_on_the_same_data_dir_is_refused(
    control_plane: ControlPlane, start_agent: Callable[..., AgentProcess]
) -> None:
    first = start_agent(name="twin")
    with control_plane.admin() as api:
        wait_for(lambda: api.get("/api/workers").json(), 30, "first agent to enroll")
    second = start_agent(name="twin")
    assert second.popen is not None
    assert second.popen.wait(30) == 2
    assert "another agent (pid" in second.log_tail()
    assert "give each agent its own --data-dir" in second.log_tail()
    assert first.alive


def test_agent_stops_on_sigterm_while_the_control_plane_is_down(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    behaviour_image: str,
    tmp_path: Path,
) -> None:
    agent, task_id, _spooled = _spool_while_control_plane_down(
        control_plane, start_agent, behaviour_image, tmp_path, "polite", n=5, seconds=3
    )
    assert agent.popen is not None
    agent.popen.send_signal(signal.SIGTERM)
    # It gives up waiting for the control plane instead of holding on until it returns.
    assert agent.popen.wait(45) != -signal.SIGKILL
    control_plane.start()
    start_agent(name="polite", workers=1)
    with control_plane.admin() as api:
        record = wait_finished(api, task_id, timeout=60)
    assert record["status"] == "succeeded"
    assert record["attempts"] == 1


def _spool_while_control_plane_down(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    image: str,
    tmp_path: Path,
    name: str,
    n: int,
    seconds: float,
) -> tuple[AgentProcess, str, Path]:
    """Start a slow task, stop the control plane under it, wait until its outcome is spooled."""
    with control_plane.admin() as api:
        register_behaviour_plugin(api, image)
        agent = start_agent(name=name, workers=1)
        task_id = submit(api, "behaviour", {"n": n}, mode="slow", seconds=seconds)
        wait_for(lambda: task(api, task_id)["status"] == "running", 60, "task to start")
    control_plane.stop()
    spooled = tmp_path / name / "spool" / f"{task_id}.json"
    wait_for(spooled.exists, 30, "the outcome to be spooled")
    return agent, task_id, spooled
