"""Who may do what: admin token, enrollment token, per-agent credentials."""

from __future__ import annotations

import httpx

from tests.support.processes import ENROLLMENT_TOKEN, ControlPlane


def register(plane: ControlPlane, name: str) -> dict[str, str]:
    response = httpx.post(
        f"{plane.url}/api/workers/register",
        json={"enrollment_token": ENROLLMENT_TOKEN, "name": name},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_admin_routes_need_the_admin_token(control_plane: ControlPlane) -> None:
    assert httpx.get(f"{control_plane.url}/api/tasks").status_code == 401
    wrong = httpx.get(f"{control_plane.url}/api/tasks", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "admin token" in wrong.json()["detail"]


def test_wrong_enrollment_token_is_refused(control_plane: ControlPlane) -> None:
    response = httpx.post(
        f"{control_plane.url}/api/workers/register", json={"enrollment_token": "x", "name": "a"}
    )
    assert response.status_code == 401
    with control_plane.admin() as api:
        assert api.get("/api/workers").json() == []


def test_agent_credential_cannot_act_as_admin_or_another_agent(control_plane: ControlPlane) -> None:
    first, second = register(control_plane, "one"), register(control_plane, "two")
    assert first["worker_id"] != second["worker_id"]
    headers = {"Authorization": f"Bearer {first['credential']}"}
    as_admin = httpx.get(f"{control_plane.url}/api/tasks", headers=headers)
    assert as_admin.status_code == 403
    as_other = httpx.post(
        f"{control_plane.url}/api/workers/{second['worker_id']}/heartbeat", json={}, headers=headers
    )
    assert as_other.status_code == 403
    own = httpx.post(
        f"{control_plane.url}/api/workers/{first['worker_id']}/heartbeat", json={}, headers=headers
    )
    assert own.status_code == 200
    assert own.json()["queues"] == [f"dts.agent.{first['worker_id']}"]


def test_heartbeat_lists_queues_of_enabled_plugins_narrowed_by_agent(
    control_plane: ControlPlane,
) -> None:
    agent = register(control_plane, "narrow")
    with control_plane.admin() as api:
        for plugin_id, queue in (("a", "qa"), ("b", "qb")):
            manifest = {
                "id": plugin_id,
                "name": plugin_id,
                "version": "1",
                "docker_image": "x:1",
                "queue": queue,
            }
            assert api.post("/api/plugins", json=manifest).status_code == 201
    headers = {"Authorization": f"Bearer {agent['credential']}"}
    url = f"{control_plane.url}/api/workers/{agent['worker_id']}/heartbeat"
    assert httpx.post(url, json={}, headers=headers).json()["queues"][1:] == ["qa", "qb"]
    assert httpx.post(url, json={"queues": ["qb"]}, headers=headers).json()["queues"][1:] == ["qb"]


def test_an_agent_cannot_finish_a_task_it_did_not_start(control_plane: ControlPlane) -> None:
    first, second = register(control_plane, "one"), register(control_plane, "two")
    with control_plane.admin() as api:
        manifest = {"id": "p", "name": "p", "version": "1", "docker_image": "x:1", "queue": "q"}
        assert api.post("/api/plugins", json=manifest).status_code == 201
        task_id = api.post("/api/tasks", json={"type": "t", "data": {}, "plugin_id": "p"}).json()[
            "task_id"
        ]
    outcome = {"succeeded": True, "result": {"forged": True}}

    def report(agent: dict[str, str]) -> httpx.Response:
        return httpx.post(
            f"{control_plane.url}/api/workers/{agent['worker_id']}/tasks/{task_id}/result",
            json=outcome,
            headers={"Authorization": f"Bearer {agent['credential']}"},
        )

    assert report(first).status_code == 409  # never started
    started = httpx.post(
        f"{control_plane.url}/api/workers/{first['worker_id']}/tasks/{task_id}/start",
        headers={"Authorization": f"Bearer {first['credential']}"},
    )
    assert started.status_code == 200
    assert report(second).status_code == 409  # started by another agent
    assert report(first).json() == {"recorded": True, "status": "succeeded"}
    with control_plane.admin() as api:
        assert api.get(f"/api/tasks/{task_id}").json()["worker_id"] == first["worker_id"]
