"""The main job on real input: real domain names through the CLI, an agent and the plugin."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from disposable_email_domains import blocklist

from tests.conftest import REPO
from tests.support.domain_oracle import expected_result, load_psls
from tests.support.processes import ADMIN_TOKEN, AgentProcess, ControlPlane, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ITEMS = 200


def dts(control_plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DTS_SERVER": control_plane.url, "DTS_ADMIN_TOKEN": ADMIN_TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "control_plane.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_real_domains_flow_through_and_match_an_independent_computation(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    example_plugin_image: str,
    tmp_path: Path,
) -> None:
    names = sorted(blocklist)
    sample = [names[i * len(names) // ITEMS] for i in range(ITEMS)]
    items = tmp_path / "domains.txt"
    items.write_text("\n".join(sample) + "\n")

    registered = dts(
        control_plane, "plugins", "register", str(REPO / "plugins/example_plugin/manifest.json")
    )
    assert registered.returncode == 0, registered.stderr
    start_agent(workers=3)
    submitted = dts(
        control_plane, "submit", str(items), "--plugin", "example-plugin", "--type", "domain"
    )
    assert submitted.returncode == 0, submitted.stderr
    assert f"accepted {ITEMS} item(s)" in submitted.stdout

    waited = dts(control_plane, "wait", "--plugin", "example-plugin", "--timeout", "400")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert json.loads(waited.stdout.strip().splitlines()[-1]) == {
        "queued": 0,
        "running": 0,
        "succeeded": ITEMS,
        "failed": 0,
    }

    out = tmp_path / "results.jsonl"
    exported = dts(control_plane, "export", "--plugin", "example-plugin", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["data"]["domain"] for r in records] == sample  # export keeps submission order
    psls = load_psls()
    for record in records:
        assert record["status"] == "succeeded"
        assert record["parameters"] == {"suffix_rules": "all"}  # default filled in
        result = dict(record["result"])
        assert result.pop("suffix_rule")  # the list line that decided; checked in tests/plugins
        assert result == expected_result(record["data"]["domain"], "all", psls)

    out_csv = tmp_path / "results.csv"
    assert dts(control_plane, "export", "--format", "csv", "-o", str(out_csv)).returncode == 0
    with out_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == ITEMS
    assert {json.loads(r["result"])["registrable_domain"] for r in rows} == {
        r["result"]["registrable_domain"] for r in records
    }


def test_parameter_changes_the_result(
    control_plane: ControlPlane,
    start_agent: Callable[..., AgentProcess],
    example_plugin_image: str,
) -> None:
    manifest = json.loads((REPO / "plugins/example_plugin/manifest.json").read_text())
    with control_plane.admin() as api:
        assert api.post("/api/plugins", json=manifest).status_code == 201
        start_agent()
        ids = {
            mode: api.post(
                "/api/tasks",
                json={
                    "type": "domain",
                    "data": {"domain": "MyApp.HerokuApp.com."},
                    "plugin_id": "example-plugin",
                    "plugin_parameters": {"suffix_rules": mode},
                },
            ).json()["task_id"]
            for mode in ("all", "icann")
        }
        done = {
            mode: wait_for(
                lambda i=task_id: (
                    (r := api.get(f"/api/tasks/{i}").json())["status"] == "succeeded" and r
                ),
                60,
                f"{mode} task",
            )
            for mode, task_id in ids.items()
        }
    assert done["all"]["result"]["registrable_domain"] == "myapp.herokuapp.com"
    assert done["icann"]["result"]["registrable_domain"] == "herokuapp.com"
    assert done["all"]["result"]["subdomain"] == ""
    assert done["icann"]["result"]["subdomain"] == "myapp"
