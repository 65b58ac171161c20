"""The `dts` CLI as a user runs it: a real process against a real control plane."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.support.processes import ADMIN_TOKEN, ControlPlane

PLUGIN = {
    "id": "p",
    "name": "P",
    "version": "1",
    "docker_image": "p:1",
    "queue": "q1",
    "parameters": [{"name": "depth", "type": "integer", "default": 1}],
}


def dts(
    plane: ControlPlane, *args: str, token: str | None = ADMIN_TOKEN
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DTS_ADMIN_TOKEN"}
    env["DTS_SERVER"] = plane.url
    if token:
        env["DTS_ADMIN_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "control_plane.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def counts(plane: ControlPlane) -> dict[str, int]:
    with plane.admin() as api:
        return dict(api.get("/api/tasks/counts").json())


def test_submit_status_and_export_round_trip(control_plane: ControlPlane, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(PLUGIN))
    assert (
        "registered p 1 on queue q1"
        in dts(control_plane, "plugins", "register", str(manifest)).stdout
    )
    items = tmp_path / "items.csv"
    items.write_text("domain,rank\na.com,1\nb.org,2\nc.net,3\n")
    done = dts(control_plane, "submit", str(items), "--plugin", "p", "--param", "depth=4")
    assert done.returncode == 0, done.stderr
    assert "accepted 3 item(s) for plugin p" in done.stdout
    status = dts(control_plane, "status")
    assert status.returncode == 0
    assert "queued" in status.stdout and "3" in status.stdout
    out = tmp_path / "out.jsonl"
    exported = dts(control_plane, "export", "-o", str(out), "--plugin", "p")
    assert "wrote 3 record(s)" in exported.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["data"] for r in records] == [
        {"domain": "a.com", "rank": "1"},
        {"domain": "b.org", "rank": "2"},
        {"domain": "c.net", "rank": "3"},
    ]
    assert {r["parameters"]["depth"] for r in records} == {4}


def test_bad_line_is_named_and_nothing_is_submitted(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    with control_plane.admin() as api:
        api.post("/api/plugins", json=PLUGIN)
    items = tmp_path / "items.jsonl"
    items.write_text('{"domain": "a.com"}\n{"domain": "b.org"\n')
    done = dts(control_plane, "submit", str(items), "--plugin", "p")
    assert done.returncode == 2
    assert f"{items}:2: not valid JSON" in done.stderr
    assert "nothing was submitted" in done.stderr
    assert counts(control_plane)["queued"] == 0


def test_wrong_parameter_type_is_refused_before_anything_is_stored(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    with control_plane.admin() as api:
        api.post("/api/plugins", json=PLUGIN)
    items = tmp_path / "items.txt"
    items.write_text("a.com\n")
    done = dts(control_plane, "submit", str(items), "--plugin", "p", "--param", "depth=deep")
    assert done.returncode == 2
    assert "plugin_parameters.depth: expected integer, got string" in done.stderr
    assert counts(control_plane)["queued"] == 0


def test_missing_token_and_unreachable_server_say_what_to_do(control_plane: ControlPlane) -> None:
    no_token = dts(control_plane, "status", token=None)
    assert no_token.returncode == 2
    assert "set DTS_ADMIN_TOKEN" in no_token.stderr
    down = subprocess.run(
        [
            sys.executable,
            "-m",
            "control_plane.cli",
            "--server",
            "127.0.0.1:9",
            "--token",
            "x",
            "status",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 2
    assert "cannot reach the control plane at http://127.0.0.1:9" in down.stderr
