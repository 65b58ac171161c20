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
