"""The opt-in batch contract, end to end: one container over many tasks, per-item outcomes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from tests.support.api import register_behaviour_plugin, task, wait_counts, wait_finished
from tests.support.processes import AgentProcess, ControlPlane, RedisServer, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def submit_bulk(api: httpx.Client, items: int, **params: Any) -> list[str]:
    response = api.post(
        "/api/tasks/bulk",
        json={
            "type": "num",
            "plugin_id": "behaviour",
            "plugin_parameters": params,
            "items": [{"n": n} for n in range(items)],
        },
    )
    assert response.status_code == 202, response.text
    page = api.get("/api/tasks", params={"batch_id": response.json()["batch_id"], "limit": 1000})
    return [t["id"] for t in reversed(page.json()["items"])]  # oldest (n=0) first


def by_n(api: httpx.Client, ids: list[str]) -> dict[int, dict[str, Any]]:
    records = [task(api, i) for i in ids]
    return {r["data"]["n"]: r for r in records}


def test_batch_plugin_gets_one_message_per_batch_and_every_item_succeeds(
    control_plane: ControlPlane,
    clean_redis: RedisServer,
    start_agent: Callable[..., AgentProcess],
    behaviour_image: str,
) -> None:
    with control_plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image, batch={"max_items": 20})
        ids = submit_bulk(api, 50)
        assert redis.Redis(port=clean_redis.port).llen("behaviour_queue") == 3  # 20 + 20 + 10
        start_agent()
        assert wait_counts(api, 50, 120, plugin_id="behaviour")["succeeded"] == 50
        records = by_n(api, ids)
    assert sorted(records) == list(range(50))
    for n, record in records.items():
        assert record["result"] == {"echo": {"n": n}, "type": "num"}
        assert record["attempts"] == 1
        assert record["exit_code"] == 0


@pytest.mark.parametrize(
    ("mode", "extra", "check"),
    [
        ("odd_errors", {}, "odd_errors"),
        ("skip_odd", {}, "skip_odd"),
        ("crash_after", {"count": 3}, "crash_after"),
        ("garbage", {}, "garbage"),
    ],
)
def test_per_item_outcomes(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    behaviour_image: str,
    mode: str,
    extra: dict[str, Any],
    check: str,
) -> None:
    with control_plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image, batch={"max_items": 10})
        start_agent()
        ids = submit_bulk(api, 10, mode=mode, **extra)
        wait_counts(api, 10, 120, plugin_id="behaviour")
        records = by_n(api, ids)
    ok = {n for n, r in records.items() if r["status"] == "succeeded"}
    if check == "odd_errors":
        assert ok == {0, 2, 4, 6, 8}
        assert records[3]["failure_kind"] == "item_error"
        assert (
            records[3]["error"]
            == "plugin reported an error for this item: odd number 3 is not allowed"
        )
    elif check == "skip_odd":
        assert ok == {0, 2, 4, 6, 8}
        assert records[5]["failure_kind"] == "no_result"
        assert "wrote no line for this item in /output/results.jsonl" in records[5]["error"]
    elif check == "crash_after":
        assert ok == {0, 1, 2}
        assert records[0]["result"] == {"echo": {"n": 0}, "type": "num"}
        for n in range(3, 10):
            assert records[n]["failure_kind"] == "exit_nonzero"
            assert records[n]["error"] == (
                "batch run exited with code 3 before this item had a result: "
                "RuntimeError: item 3 broke the run"
            )
    else:
        assert ok == set(range(10))  # unusable lines are ignored, not attributed


def test_single_task_to_a_batch_plugin_runs_as_a_batch_of_one(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    behaviour_image: str,
) -> None:
    with control_plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image, batch={"max_items": 10})
        start_agent()
        response = api.post(
            "/api/tasks", json={"type": "num", "data": {"n": 4}, "plugin_id": "behaviour"}
        )
        record = wait_finished(api, response.json()["task_id"])
    assert record["status"] == "succeeded"
    assert record["result"] == {"echo": {"n": 4}, "type": "num"}


def test_agent_killed_mid_batch_loses_nothing_and_records_once(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    behaviour_image: str,
) -> None:
    with control_plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image, batch={"max_items": 25})
        agent = start_agent(name="batcher", workers=1)
        ids = submit_bulk(api, 25, mode="slow", seconds=5)
        wait_for(lambda: task(api, ids[0])["status"] == "running", 60, "the batch to start")
        agent.kill()
        start_agent(name="batcher", workers=1)
        counts = wait_counts(api, 25, 120, plugin_id="behaviour")
        assert counts == {"queued": 0, "running": 0, "succeeded": 25, "failed": 0}
        records = by_n(api, ids)
    assert {r["attempts"] for r in records.values()} == {2}
    assert all(r["result"] == {"echo": {"n": n}, "type": "num"} for n, r in records.items())
