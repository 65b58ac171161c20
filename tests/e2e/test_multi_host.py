"""Several machines: agents in their own network namespaces (tests.support.netns), reaching
the control plane and Redis over a bridge, sharing work and surviving a pulled cable."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import missing_service
from tests.support.api import register_behaviour_plugin, wait_counts
from tests.support.netns import (
    Host,
    Hosts,
    NetnsAgent,
    NetnsControlPlane,
    NetnsRedis,
    NetnsUnavailable,
)
from tests.support.processes import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

WORKER_TIMEOUT = 6
"""Seconds without a heartbeat before the control plane requeues an agent's tasks (tests
where no agent should look gone pass a longer one: `parametrize("plane", [30], indirect=...)`)."""


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    if shutil.which("ip") is None:
        missing_service("iproute2 (`ip`)")
    machines = Hosts(3)
    try:
        machines.__enter__()
    except NetnsUnavailable as exc:
        missing_service(f"network namespaces ({exc})")
    try:
        yield machines
    finally:
        machines.__exit__(None, None, None)


@pytest.fixture(scope="module")
def netns_redis(hosts: Hosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsRedis]:
    if shutil.which("redis-server") is None:
        missing_service("redis-server (apt-get install redis-server)")
    server = NetnsRedis(tmp_path_factory.mktemp("netns-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def plane(
    netns_redis: NetnsRedis, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[NetnsControlPlane]:
    redis.Redis(port=netns_redis.port).flushall()
    control_plane = NetnsControlPlane(
        netns_redis.port,
        tmp_path / "control-plane",
        tmp_path,
        DTS_WORKER_TIMEOUT=str(getattr(request, "param", WORKER_TIMEOUT)),
    )
    control_plane.start()
    yield control_plane
    control_plane.stop()


@pytest.fixture
def start_on(
    plane: NetnsControlPlane, hosts: Hosts, tmp_path: Path, docker_client: object
) -> Iterator[Callable[..., NetnsAgent]]:
    """Start an agent on a host; every agent is stopped (cables back in first) at the end."""
    agents: list[NetnsAgent] = []

    def start(host: Host, workers: int = 1) -> NetnsAgent:
        name = f"agent-{host.name}"
        agent = NetnsAgent(host, plane.server, tmp_path / name, tmp_path, name, workers)
        agent.start()
        agents.append(agent)
        return agent

    yield start
    for host in hosts:
        if not host.link_is_up:
            host.link_up()
    for agent in agents:
        agent.stop()


# ---------------------------------------------------------------- helpers


def workers_by_name(api: httpx.Client) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in api.get("/api/workers").json()}


def wait_ready(api: httpx.Client, agents: list[NetnsAgent]) -> dict[str, str]:
    """Wait until every agent is online and consuming; returns name -> worker id."""
    names = {a.name for a in agents}

    def online() -> dict[str, str] | None:
        workers = workers_by_name(api)
        if not all(n in workers and workers[n]["online"] for n in names):
            return None
        return {n: str(workers[n]["id"]) for n in names}

    ids: dict[str, str] = wait_for(online, 90, "agents online")
    for agent in agents:
        wait_for(agent.ready, 60, f"{agent.name}'s Celery worker to be ready")
    return ids


def submit_bulk(api: httpx.Client, items: int, **params: Any) -> str:
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
    return str(response.json()["batch_id"])


def tasks_where(api: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    while True:
        page = api.get("/api/tasks", params={**filters, "offset": len(tasks), "limit": 1000}).json()
        tasks.extend(page["items"])
        if len(tasks) >= page["total"] or not page["items"]:
            return tasks


def assert_worker_listings_consistent(
    api: httpx.Client, batch: str, tasks: list[dict[str, Any]], worker_ids: list[str]
) -> dict[str, set[str]]:
    """GET /api/tasks?worker_id=... splits the batch exactly as the tasks' own worker_id does,
    and /api/tasks/counts?worker_id=... agrees; returns worker id -> task ids."""
    listed: dict[str, set[str]] = {}
    for worker_id in worker_ids:
        page = tasks_where(api, batch_id=batch, worker_id=worker_id)
        assert all(t["worker_id"] == worker_id for t in page)
        listed[worker_id] = {t["id"] for t in page}
        assert len(listed[worker_id]) == len(page)  # no task listed twice
        counts = api.get(
            "/api/tasks/counts", params={"batch_id": batch, "worker_id": worker_id}
        ).json()
        assert counts == {"queued": 0, "running": 0, "succeeded": len(page), "failed": 0}
        assert listed[worker_id] == {t["id"] for t in tasks if t["worker_id"] == worker_id}
    assert sum(len(ids) for ids in listed.values()) == len(tasks)
    assert set().union(*listed.values()) == {t["id"] for t in tasks}
    return listed


def assert_all_succeeded_once(tasks: list[dict[str, Any]], items: int) -> None:
    assert sorted(t["data"]["n"] for t in tasks) == list(range(items))
    for record in tasks:
        assert record["status"] == "succeeded", record
        assert record["result"] == {"echo": record["data"], "type": "num"}
        assert record["exit_code"] == 0


# ---------------------------------------------------------------- tests


# A busy shared machine must not make a healthy agent look gone: every item runs once.
@pytest.mark.parametrize("plane", [30], indirect=True, ids=["worker_timeout=30"])
def test_three_hosts_share_the_work(
    plane: NetnsControlPlane,
    hosts: Hosts,
    start_on: Callable[..., NetnsAgent],
    behaviour_image: str,
) -> None:
    items = 60
    with plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image, batch={"max_items": 5})
        agents = [start_on(host) for host in hosts]
        ids = wait_ready(api, agents)
        for host, agent in zip(hosts, agents, strict=True):
            assert agent.popen is not None and host.contains(agent.popen.pid)
        batch = submit_bulk(api, items, mode="slow", seconds=1)
        counts = wait_counts(api, items, 150, batch_id=batch)
        assert counts == {"queued": 0, "running": 0, "succeeded": items, "failed": 0}
        tasks = tasks_where(api, batch_id=batch)
        listed = assert_worker_listings_consistent(api, batch, tasks, list(ids.values()))
    assert_all_succeeded_once(tasks, items)
    assert {t["attempts"] for t in tasks} == {1}
    per_worker = Counter(t["worker_id"] for t in tasks)
    assert set(per_worker) == set(ids.values()), per_worker
    # Whole batches of 5: every agent ran at least one.
    assert all(n >= 5 and n % 5 == 0 for n in per_worker.values()), per_worker
    assert {w: len(t) for w, t in listed.items()} == dict(per_worker)


def test_host_cut_off_mid_run_is_recovered_and_its_late_results_are_refused(
    plane: NetnsControlPlane,
    hosts: Hosts,
    start_on: Callable[..., NetnsAgent],
    behaviour_image: str,
    docker_client: Any,
) -> None:
    items = 15  # three batches of 5: one on host 1 when its cable is pulled
    h1, h2 = hosts[0], hosts[1]
    with plane.admin() as api:
        register_behaviour_plugin(api, behaviour_image, batch={"max_items": 5})
        a1, a2 = start_on(h1), start_on(h2)
        ids = wait_ready(api, [a1, a2])
        w1, w2 = ids[a1.name], ids[a2.name]
        batch = submit_bulk(api, items, mode="slow", seconds=3)

        # Host 1's container runs (so its agent holds the start reply): pull the cable.
        wait_for(
            lambda: docker_client.containers.list(filters={"label": f"dts.agent={w1}"}),
            60,
            "a container of host 1's agent",
            interval=0.1,
        )
        h1.link_down()
        cut_at = time.time()
        try:
            cut = {
                t["id"] for t in tasks_where(api, batch_id=batch, worker_id=w1, status="running")
            }
            assert len(cut) == 5, cut

            # Host 1 finishes the batch but cannot report: the outcomes wait in its spool.
            wait_for(lambda: a1.spooled == len(cut), 60, "host 1 to spool its outcomes")
            # The control plane declares it gone and host 2 runs its tasks again.
            wait_for(
                lambda: not workers_by_name(api)[a1.name]["online"],
                WORKER_TIMEOUT + 30,
                "host 1 to be seen offline",
            )

            def restarted_by_host2() -> bool:
                records = [api.get(f"/api/tasks/{i}").json() for i in cut]
                return all(r["worker_id"] == w2 and r["attempts"] >= 2 for r in records)

            wait_for(restarted_by_host2, 90, "host 2 to run host 1's tasks again", interval=0.5)
            assert a1.spooled == len(cut)  # still cut off: nothing delivered yet
            assert a1.alive
        finally:
            h1.link_up()

        # Cable back: host 1 delivers its spool (refused: host 2 started those tasks last)
        # and its heartbeats resume.
        wait_for(lambda: a1.spooled == 0, 90, "host 1 to deliver its spool")
        wait_for(lambda: workers_by_name(api)[a1.name]["online"], 60, "host 1 to be online again")
        counts = wait_counts(api, items, 120, batch_id=batch)
        assert counts == {"queued": 0, "running": 0, "succeeded": items, "failed": 0}
        tasks = tasks_where(api, batch_id=batch)
        listed = assert_worker_listings_consistent(api, batch, tasks, [w1, w2])

        # Host 1 consumes again: with host 2 gone, a new batch is run by host 1.
        a2.stop()
        after = submit_bulk(api, 5, mode="ok")
        assert wait_counts(api, 5, 90, batch_id=after)["succeeded"] == 5
        assert {t["worker_id"] for t in tasks_where(api, batch_id=after)} == {w1}

    assert_all_succeeded_once(tasks, items)
    by_id = {t["id"]: t for t in tasks}
    for task_id in cut:
        record = by_id[task_id]
        assert record["attempts"] >= 2, record
        assert record["worker_id"] == w2, record  # host 1's late outcome was not recorded
        assert datetime.fromisoformat(record["started_at"]).timestamp() > cut_at
        assert task_id in listed[w2] and task_id not in listed[w1]
    assert {by_id[i]["attempts"] for i in set(by_id) - cut} == {1}
    assert a1.alive
