"""Small helpers over the admin REST API for tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.processes import wait_for


def register_behaviour_plugin(
    client: httpx.Client,
    image: str,
    plugin_id: str = "behaviour",
    queue: str = "behaviour_queue",
    timeout_seconds: int = 20,
    memory_mb: int = 64,
    batch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = client.post(
        "/api/plugins",
        json={
            "id": plugin_id,
            "name": "Behaviour",
            "version": "1",
            "docker_image": image,
            "description": "test plugin",
            "queue": queue,
            "parameters": [
                {
                    "name": "mode",
                    "type": "string",
                    "description": "",
                    "required": False,
                    "default": "ok",
                },
                {"name": "seconds", "type": "number", "description": "", "required": False},
                {"name": "count", "type": "integer", "description": "", "required": False},
            ],
            "limits": {"timeout_seconds": timeout_seconds, "memory_mb": memory_mb},
            "batch": batch,
        },
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def submit(client: httpx.Client, plugin_id: str, data: Any, **params: Any) -> str:
    response = client.post(
        "/api/tasks",
        json={"type": "test", "data": data, "plugin_id": plugin_id, "plugin_parameters": params},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


def task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    response = client.get(f"/api/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_finished(client: httpx.Client, task_id: str, timeout: float = 60) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        record = task(client, task_id)
        return record if record["status"] in ("succeeded", "failed") else None

    return dict(wait_for(finished, timeout, f"task {task_id} to finish", interval=0.5))


def wait_counts(client: httpx.Client, done: int, timeout: float, **filters: str) -> dict[str, int]:
    def reached() -> dict[str, int] | None:
        counts = client.get("/api/tasks/counts", params=filters).json()
        return counts if counts["succeeded"] + counts["failed"] >= done else None

    return dict(wait_for(reached, timeout, f"{done} finished tasks", interval=1))
