"""Task submission over real HTTP against a control plane process, a real Redis and SQLite."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
import redis

from tests.support.processes import ControlPlane, RedisServer

SEED_PLUGIN = {
    "id": "example-plugin",
    "name": "Example Plugin",
    "version": "1.0.0",
    "docker_image": "example-plugin:1.0.0",
    "description": "An example plugin",
    "queue": "example_queue",
    "parameters": [
        {
            "name": "param1",
            "type": "string",
            "description": "Example parameter",
            "required": False,
            "default": "default-value",
        }
    ],
}
SEED_TASK = {
    "type": "domain",
    "data": {"domain": "example.com"},
    "plugin_id": "example-plugin",
    "plugin_parameters": {"param1": "value1"},
}


@pytest.fixture
def api(control_plane: ControlPlane) -> httpx.Client:
    with control_plane.admin() as client:
        assert client.post("/api/plugins", json=SEED_PLUGIN).status_code == 201
        yield client


def queue_length(server: RedisServer, queue: str) -> int:
    return int(redis.Redis(port=server.port).llen(queue))


def total(api: httpx.Client) -> int:
    return int(api.get("/api/tasks").json()["total"])


def test_seed_task_json_is_accepted_stored_and_queued(
    api: httpx.Client, clean_redis: RedisServer
) -> None:
    response = api.post("/api/tasks", json=SEED_TASK)
    assert response.status_code == 201
    task_id = response.json()["task_id"]
    stored = api.get(f"/api/tasks/{task_id}").json()
    assert stored["status"] == "queued"
    assert stored["data"] == {"domain": "example.com"}
    assert stored["parameters"] == {"param1": "value1"}
    assert stored["queue"] == "example_queue"
    assert stored["attempts"] == 0 and stored["started_at"] is None
    assert queue_length(clean_redis, "example_queue") == 1


def test_defaults_are_filled_in(api: httpx.Client) -> None:
    body = {**SEED_TASK, "plugin_parameters": {}}
    task_id = api.post("/api/tasks", json=body).json()["task_id"]
    assert api.get(f"/api/tasks/{task_id}").json()["parameters"] == {"param1": "default-value"}


def test_plugin_reregistered_with_new_version_is_updated(api: httpx.Client) -> None:
    response = api.post("/api/plugins", json={**SEED_PLUGIN, "version": "1.1.0"})
    assert response.status_code == 200
    assert api.get("/api/plugins/example-plugin").json()["version"] == "1.1.0"
    assert [p["id"] for p in api.get("/api/plugins").json()] == ["example-plugin"]


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({**SEED_TASK, "plugin_id": "nope"}, 422, "plugin_id", "unknown plugin 'nope'"),
        (
            {**SEED_TASK, "plugin_parameters": {"param1": 5}},
            422,
            "plugin_parameters.param1",
            "expected string, got integer",
        ),
        (
            {**SEED_TASK, "plugin_parameters": {"colour": "red"}},
            422,
            "plugin_parameters.colour",
            "unknown parameter",
        ),
        (
            {k: v for k, v in SEED_TASK.items() if k != "plugin_id"},
            422,
            "plugin_id",
            "Field required",
        ),
        ({**SEED_TASK, "plugin_parameters": "x"}, 422, "plugin_parameters", "dictionary"),
        ({**SEED_TASK, "extra": 1}, 422, "extra", "Extra inputs"),
    ],
)
def test_bad_task_input_names_the_field_and_stores_nothing(
    api: httpx.Client,
    clean_redis: RedisServer,
    body: dict[str, Any],
    status: int,
    field: str,
    words: str,
) -> None:
    response = api.post("/api/tasks", json=body)
    assert response.status_code == status
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert total(api) == 0
    assert queue_length(clean_redis, "example_queue") == 0


def test_missing_required_parameter_is_named(api: httpx.Client) -> None:
    plugin = {
        **SEED_PLUGIN,
        "id": "strict",
        "parameters": [{"name": "depth", "type": "integer", "required": True}],
    }
    assert api.post("/api/plugins", json=plugin).status_code == 201
    response = api.post(
        "/api/tasks", json={**SEED_TASK, "plugin_id": "strict", "plugin_parameters": {}}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "plugin_parameters.depth"
    assert "required parameter is missing" in response.json()["detail"]
    assert total(api) == 0


def test_malformed_json_says_where(api: httpx.Client) -> None:
    response = api.post(
        "/api/tasks", content=b'{"type": "domain",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("request body is not valid JSON at character")
    assert total(api) == 0


def test_bad_plugin_manifest_is_refused_with_field(api: httpx.Client) -> None:
    bad = {**SEED_PLUGIN, "id": "p2", "parameters": [{"name": "x", "type": "colour"}]}
    response = api.post("/api/plugins", json=bad)
    assert response.status_code == 422
    assert response.json()["field"] == "parameters.0.type"
    assert api.get("/api/plugins/p2").status_code == 404


def test_bulk_json_enqueues_every_item(api: httpx.Client, clean_redis: RedisServer) -> None:
    items = [{"domain": f"host{i}.example.org"} for i in range(5000)]
    response = api.post(
        "/api/tasks/bulk", json={"type": "domain", "plugin_id": "example-plugin", "items": items}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 5000
    assert queue_length(clean_redis, "example_queue") == 5000
    page = api.get("/api/tasks", params={"batch_id": body["batch_id"], "limit": 3}).json()
    assert page["total"] == 5000
    # Newest first.
    assert [t["data"]["domain"] for t in page["items"]] == [
        "host4999.example.org",
        "host4998.example.org",
        "host4997.example.org",
    ]


@pytest.mark.parametrize(
    ("fmt", "payload", "expected"),
    [
        ("lines", "a.com\n\nb.org\n", [{"domain": "a.com"}, {"domain": "b.org"}]),
        ("jsonl", '{"domain": "a.com"}\n"b.org"\n', [{"domain": "a.com"}, {"domain": "b.org"}]),
        (
            "csv",
            "domain,rank\na.com,1\nb.org,2\n",
            [{"domain": "a.com", "rank": "1"}, {"domain": "b.org", "rank": "2"}],
        ),
    ],
)
def test_upload_formats(
    api: httpx.Client, fmt: str, payload: str, expected: list[dict[str, str]]
) -> None:
    response = api.post(
        "/api/tasks/upload",
        params={"plugin_id": "example-plugin", "type": "domain", "format": fmt},
        content=payload.encode(),
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(expected)
    exported = api.get("/api/tasks/export", params={"format": "jsonl"}).text.splitlines()
    assert [json.loads(line)["data"] for line in exported] == expected


def test_upload_with_a_bad_line_names_it_and_stores_nothing(
    api: httpx.Client, clean_redis: RedisServer
) -> None:
    payload = "\n".join([f'{{"domain": "ok{i}.com"}}' for i in range(100)] + ['{"domain": oops}'])
    response = api.post(
        "/api/tasks/upload",
        params={"plugin_id": "example-plugin", "type": "domain"},
        content=payload.encode(),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "body.line[101]"
    assert "line 101: not valid JSON" in response.json()["detail"]
    assert total(api) == 0
    assert queue_length(clean_redis, "example_queue") == 0


def test_list_filters_and_counts(api: httpx.Client) -> None:
    api.post(
        "/api/tasks/bulk",
        json={"type": "domain", "plugin_id": "example-plugin", "items": ["a", "b"]},
    )
    api.post("/api/tasks/bulk", json={"type": "url", "plugin_id": "example-plugin", "items": ["c"]})
    assert api.get("/api/tasks", params={"type": "url"}).json()["total"] == 1
    assert (
        api.get("/api/tasks", params={"status": "queued", "queue": "example_queue"}).json()["total"]
        == 3
    )
    assert api.get("/api/tasks", params={"status": "succeeded"}).json()["total"] == 0
    assert api.get("/api/tasks/counts").json() == {
        "queued": 3,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
    }
    assert api.get("/api/tasks", params={"status": "bogus"}).status_code == 422
    assert api.get("/api/tasks/nope").status_code == 404


def test_openapi_docs_are_served(control_plane: ControlPlane) -> None:
    page = httpx.get(f"{control_plane.url}/docs")
    assert page.status_code == 200
    # Served locally, so the docs work on a control plane with no internet access.
    assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text
    assert httpx.get(f"{control_plane.url}/docs-assets/swagger-ui-bundle.js").status_code == 200
    spec = httpx.get(f"{control_plane.url}/openapi.json").json()
    assert "/api/tasks" in spec["paths"] and "/api/workers/register" in spec["paths"]


DEEP: Any = []
for _ in range(300):
    DEEP = [DEEP]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**SEED_TASK, "data": DEEP}, "data", "nested deeper than 64 levels"),
        ({**SEED_TASK, "data": {"x": 2**70}}, "data", "data.x: integer outside the 64-bit range"),
        ({**SEED_TASK, "type": "a\u0000b"}, "type", "printable text"),
    ],
)
def test_values_no_store_can_hold_are_refused(
    api: httpx.Client, body: dict[str, Any], field: str, words: str
) -> None:
    response = api.post("/api/tasks", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert total(api) == 0


def test_nan_and_lone_surrogates_are_refused_in_raw_json(
    api: httpx.Client, clean_redis: RedisServer
) -> None:
    nan = b'{"type": "domain", "data": {"x": NaN}, "plugin_id": "example-plugin"}'
    response = api.post("/api/tasks", content=nan, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "data.x: nan is not a JSON number" in response.json()["detail"]
    items = ",".join(['{"d": "ok"}'] * 2500 + ['{"d": "\\ud800"}'])
    bulk = f'{{"type": "domain", "plugin_id": "example-plugin", "items": [{items}]}}'.encode()
    response = api.post(
        "/api/tasks/bulk", content=bulk, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "items[2500].d: text contains an unpaired surrogate" in response.json()["detail"]
    upload = ("\n".join(['{"domain": "a.com"}'] * 2100) + '\n{"domain": "\\ud800"}\n').encode()
    response = api.post(
        "/api/tasks/upload",
        params={"plugin_id": "example-plugin", "type": "domain"},
        content=upload,
    )
    assert response.status_code == 422
    assert response.json()["field"] == "body.line[2101]"
    assert total(api) == 0
    assert queue_length(clean_redis, "example_queue") == 0


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"queue": "unacked"}, "queue", "reserved"),
        ({"queue": "dts.agent.w1"}, "queue", "reserved"),
        ({"docker_image": "foo bar:1"}, "docker_image", "not a Docker image reference"),
        (
            {"parameters": [{"name": "p", "required": True, "default": "x"}]},
            "parameters.0",
            "default would never be used",
        ),
    ],
)
def test_manifests_that_would_break_agents_are_refused(
    api: httpx.Client, change: dict[str, Any], field: str, words: str
) -> None:
    response = api.post("/api/plugins", json={**SEED_PLUGIN, "id": "other", **change})
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert api.get("/api/plugins/other").status_code == 404


def test_moving_a_plugin_with_unfinished_tasks_to_another_queue_is_refused(
    api: httpx.Client,
) -> None:
    assert api.post("/api/tasks", json=SEED_TASK).status_code == 201
    response = api.post("/api/plugins", json={**SEED_PLUGIN, "queue": "elsewhere"})
    assert response.status_code == 409
    assert "1 unfinished task(s) on queue 'example_queue'" in response.json()["detail"]
    assert api.get("/api/plugins/example-plugin").json()["queue"] == "example_queue"


def test_huge_offset_is_a_422(api: httpx.Client) -> None:
    assert api.get("/api/tasks", params={"offset": 10**20}).status_code == 422


def test_oversized_body_is_refused_before_it_is_read(control_plane: ControlPlane) -> None:
    # A raw socket: an HTTP client refuses to declare more bytes than it sends.
    with socket.create_connection(("127.0.0.1", control_plane.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2147483648\r\n\r\n{}"
        )
        reply = ""
        while not reply.endswith("}"):
            chunk = sock.recv(65536).decode()
            if not chunk:
                break
            reply += chunk
    assert reply.startswith("HTTP/1.1 413")
    assert "request body larger than 128 MiB" in reply
