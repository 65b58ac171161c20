"""The example plugin image, run for real, checked against an independent implementation.

Two kinds of runs:
- one container (entrypoint overridden) that imports the plugin's `process` function and
  analyses several hundred real names, so the PSL logic is checked broadly without paying
  a container start per name;
- a handful of runs through the real entrypoint and the file contract, with the
  hardened flags the agent uses, including bad input (exit 2, stderr, no result);
- runs of the opt-in batch contract through the real entrypoint: hundreds of items in
  one container (/input/items.jsonl -> /output/results.jsonl), bad items, bad lines and
  bad parameters.

The oracle is the `publicsuffixlist` package reading the same bundled list, Python's
`idna` codec and plain string operations: none of it shares code with the plugin.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from disposable_email_domains import blocklist
from publicsuffixlist import PublicSuffixList

from tests.conftest import REPO
from tests.support.domain_oracle import LIST_FILE, MODES, expected_result, load_psls

pytestmark = pytest.mark.docker

PLUGIN_DIR = REPO / "plugins" / "example_plugin"
SAMPLE_SIZE = 300
LDH_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")

# What the agent applies to every plugin container (design.md, "Containers run hardened").
HARDENED: dict[str, Any] = {
    "read_only": True,
    "network_mode": "none",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "user": "65534:65534",
    "pids_limit": 64,
    "mem_limit": "256m",
    "tmpfs": {"/tmp": "rw,size=16m"},
}

# Runs inside the plugin image: imports the plugin like its entrypoint does and analyses
# every (name, mode) pair, one JSON line each.
BATCH_SCRIPT = """
import json, sys
sys.path.insert(0, "/plugin")
import main

with open("/check/names.json", encoding="utf-8") as f:
    names = json.load(f)
with open("/output/results.jsonl", "w", encoding="utf-8") as out:
    for mode in ("all", "icann"):
        for name in names:
            row = {"name": name, "mode": mode}
            try:
                row["result"] = main.process({"domain": name}, {"suffix_rules": mode})
            except main.BadInputError as exc:
                row["error"] = str(exc)
            out.write(json.dumps(row) + "\\n")
"""

EDGE_CASES = [
    "WWW.Example.CO.UK.",
    "bücher.example",
    "BÜCHER.de",
    "xn--bcher-kva.example",
    "食狮.com.cn",
    "例子。中国",
    "foo.bar.ck",
    "bar.ck",
    "www.ck",
    "ck",
    "co.uk",
    "uk",
    "kobe.jp",
    "city.kobe.jp",
    "www.city.kobe.jp",
    "a.b.c.kobe.jp",
    "myapp.herokuapp.com",
    "herokuapp.com",
    "foo.github.io",
    "example.unknowntld",
    "xn--strae-oqa.de",
    "straße.de",
    "xn--zz.com",
    "a" * 64 + ".com",
    ".".join(["a" * 63] * 4),
    "_dmarc.example.com",
    "-bad-.example.com",
    "10.0.0.1",
    "  Padded.Example.org  ",
]

BAD_NAMES = ["", "   ", ".", "a..b", ".example.com", "é" * 70 + ".com"]


def rule_explains_suffix(rule: str, result: dict[str, Any], psl: PublicSuffixList) -> bool:
    """The reported `suffix_rule` really yields the reported public suffix."""
    suffix = result["public_suffix"]
    if rule == "*":
        return psl.publicsuffix(result["ascii"], accept_unknown=False) is None
    if rule.startswith("!"):
        return suffix == rule[1:].encode("idna").decode("ascii").split(".", 1)[1]
    if rule.startswith("*."):
        parent = rule[2:].encode("idna").decode("ascii")
        return suffix == parent or (
            suffix.endswith("." + parent) and suffix.count(".") == parent.count(".") + 1
        )
    return suffix == rule.encode("idna").decode("ascii")


# --- inputs ----------------------------------------------------------------------------


def real_sample() -> list[str]:
    """300 real names spread over the sorted blocklist, plus its IDN ones."""
    names = sorted(blocklist)
    spread = [names[i * len(names) // SAMPLE_SIZE] for i in range(SAMPLE_SIZE)]
    idns = [n for n in names if "xn--" in n and n not in spread]
    return spread + idns


def list_rules() -> list[str]:
    with LIST_FILE.open(encoding="utf-8") as lines:
        return [ln.split()[0] for ln in lines if ln.strip() and not ln.startswith("//")]


def rule_derived_names() -> list[str]:
    """Names around every wildcard and exception rule, and a spread of normal rules."""
    rules = list_rules()
    names: list[str] = []
    for rule in rules:
        if rule.startswith("*."):
            names += [rule[2:], "foo." + rule[2:], "a.foo." + rule[2:]]
        elif rule.startswith("!"):
            names += [rule[1:], "a." + rule[1:]]
    normal = [r for r in rules if r[0] not in "*!"]
    for rule in normal[:: len(normal) // 150]:
        names += [rule, "example." + rule]
    return names


# --- running the image -----------------------------------------------------------------


def run_container(
    client: Any,
    image: str,
    volumes: dict[str, dict[str, str]],
    environment: dict[str, str] | None = None,
    **extra: Any,
) -> tuple[int, str, str, float]:
    """Run to completion; exit code, stdout, stderr and wall time including create/remove.

    The environment defaults to the one the agent sets for a single task.
    """
    if environment is None:
        environment = {"DTS_TASK_ID": str(uuid.uuid4()), "DTS_TASK_TYPE": "domain"}
    started = time.monotonic()
    container = client.containers.run(
        image,
        volumes=volumes,
        detach=True,
        environment=environment,
        **HARDENED,
        **extra,
    )
    try:
        status = container.wait(timeout=120)
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return status["StatusCode"], stdout, stderr, time.monotonic() - started


def shared_dir(path: Path, mode: int) -> Path:
    """A host directory the container's uid 65534 can use (pytest's are root-only)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def psls() -> dict[str, PublicSuffixList]:
    return load_psls()


@pytest.fixture(scope="module")
def batch(
    docker_client: Any, example_plugin_image: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], dict[str, Any]]:
    """(name, mode) -> the plugin's row, for every name, from ONE container run."""
    root = tmp_path_factory.mktemp("batch")
    check = shared_dir(root / "check", 0o755)
    output = shared_dir(root / "output", 0o777)
    names = list(dict.fromkeys(real_sample() + EDGE_CASES + BAD_NAMES + rule_derived_names()))
    (check / "names.json").write_text(json.dumps(names), encoding="utf-8")
    (check / "batch.py").write_text(BATCH_SCRIPT, encoding="utf-8")
    for file in check.iterdir():
        file.chmod(0o644)
    code, _, stderr, _ = run_container(
        docker_client,
        example_plugin_image,
        {
            str(check): {"bind": "/check", "mode": "ro"},
            str(output): {"bind": "/output", "mode": "rw"},
        },
        entrypoint=["python3", "/check/batch.py"],
    )
    assert code == 0, stderr
    rows = [json.loads(line) for line in (output / "results.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 2 * len(names)
    return {(row["name"], row["mode"]): row for row in rows}


# --- the batch run: every field against the oracle ---------------------------------------


def test_real_names_match_the_oracle_in_both_modes(
    batch: dict[tuple[str, str], dict[str, Any]], psls: dict[str, PublicSuffixList]
) -> None:
    names = real_sample() + EDGE_CASES + rule_derived_names()
    mismatches = []
    for name in dict.fromkeys(names):
        for mode in MODES:
            row = batch[(name, mode)]
            assert "error" not in row, f"{name!r} ({mode}): {row.get('error')}"
            got = dict(row["result"])
            rule = got.pop("suffix_rule")
            want = expected_result(name, mode, psls)
            if got != want:
                diff = {
                    k: (got.get(k), want.get(k))
                    for k in want.keys() | got.keys()
                    if got.get(k) != want.get(k)
                }
                mismatches.append(f"{name!r} ({mode}): got/expected {diff}")
            if not rule_explains_suffix(rule, got, psls[mode]):
                mismatches.append(f"{name!r} ({mode}): rule {rule!r} does not give {got}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])


def test_sample_exercises_both_list_sections(
    batch: dict[tuple[str, str], dict[str, Any]],
) -> None:
    # The blocklist is full of names under private suffixes (dynv6.net, ddnss.de, ...):
    # the sample must reach some, or the "icann" parameter would go untested on real data.
    results = [batch[(name, "all")]["result"] for name in real_sample()]
    private = [r for r in results if not r["is_icann_suffix"] and r["suffix_rule"] != "*"]
    changed = [
        name
        for name in real_sample()
        if batch[(name, "all")]["result"]["public_suffix"]
        != batch[(name, "icann")]["result"]["public_suffix"]
    ]
    assert len(private) >= 5, private
    assert len(changed) == len(private)
    assert any(r["is_idn"] for r in results)


@pytest.mark.parametrize(
    ("name", "mode", "expected"),
    [
        (
            "WWW.Example.CO.UK.",
            "all",
            {
                "domain": "www.example.co.uk",
                "public_suffix": "co.uk",
                "registrable_domain": "example.co.uk",
                "subdomain": "www",
            },
        ),
        (
            "bücher.example",
            "all",
            {
                "ascii": "xn--bcher-kva.example",
                "public_suffix": "example",
                "is_icann_suffix": False,
                "suffix_rule": "*",
                "is_idn": True,
                "is_punycode": False,
            },
        ),
        ("xn--bcher-kva.example", "all", {"unicode": "bücher.example", "is_punycode": True}),
        (
            "食狮.com.cn",
            "all",
            {
                "ascii": "xn--85x722f.com.cn",
                "public_suffix": "com.cn",
                "registrable_domain_unicode": "食狮.com.cn",
                "is_icann_suffix": True,
            },
        ),
        (
            "例子。中国",
            "all",
            {
                "domain": "例子.中国",
                "ascii": "xn--fsqu00a.xn--fiqs8s",
                "public_suffix_unicode": "中国",
                "suffix_rule": "中国",
            },
        ),
        (
            "foo.bar.ck",
            "all",
            {"public_suffix": "bar.ck", "registrable_domain": "foo.bar.ck", "suffix_rule": "*.ck"},
        ),
        (
            "www.ck",
            "all",
            {"public_suffix": "ck", "registrable_domain": "www.ck", "suffix_rule": "!www.ck"},
        ),
        ("co.uk", "all", {"public_suffix": "co.uk", "registrable_domain": None, "subdomain": ""}),
        ("kobe.jp", "all", {"public_suffix": "kobe.jp", "registrable_domain": None}),
        (
            "myapp.herokuapp.com",
            "all",
            {
                "public_suffix": "herokuapp.com",
                "registrable_domain": "myapp.herokuapp.com",
                "subdomain": "",
                "is_icann_suffix": False,
            },
        ),
        (
            "myapp.herokuapp.com",
            "icann",
            {
                "public_suffix": "com",
                "registrable_domain": "herokuapp.com",
                "subdomain": "myapp",
                "is_icann_suffix": True,
            },
        ),
        ("xn--strae-oqa.de", "all", {"unicode": "straße.de", "valid": True}),
        ("straße.de", "all", {"ascii": "strasse.de"}),  # IDNA 2003 maps ß to ss
        ("xn--zz.com", "all", {"unicode": "xn--zz.com", "valid": False}),
        ("a" * 64 + ".com", "all", {"valid": False, "longest_label": 64}),
        ("_dmarc.example.com", "all", {"valid": False, "subdomain": "_dmarc"}),
        ("10.0.0.1", "all", {"valid": False, "has_digits": True}),
    ],
)
def test_hand_checked_cases(
    batch: dict[tuple[str, str], dict[str, Any]], name: str, mode: str, expected: dict[str, Any]
) -> None:
    result = batch[(name, mode)]["result"]
    assert {key: result[key] for key in expected} == expected


@pytest.mark.parametrize("name", BAD_NAMES)
def test_non_names_are_rejected(batch: dict[tuple[str, str], dict[str, Any]], name: str) -> None:
    for mode in MODES:
        assert "domain" in batch[(name, mode)]["error"]


# --- the real contract, hardened, one container per task -------------------------------


@pytest.fixture
def task_dirs(tmp_path: Path) -> tuple[Path, Path]:
    return shared_dir(tmp_path / "input", 0o755), shared_dir(tmp_path / "output", 0o777)


def run_task(
    client: Any, image: str, dirs: tuple[Path, Path], data: object, parameters: object
) -> tuple[int, str, float]:
    input_dir, output_dir = dirs
    for file_name, value in (("input.json", data), ("parameters.json", parameters)):
        path = input_dir / file_name
        path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        path.chmod(0o644)
    code, _, stderr, seconds = run_container(
        client,
        image,
        {
            str(input_dir): {"bind": "/input", "mode": "ro"},
            str(output_dir): {"bind": "/output", "mode": "rw"},
        },
    )
    return code, stderr, seconds


@pytest.mark.parametrize(
    ("domain", "parameters"),
    [
        ("WWW.Bücher.Example.co.uk.", {"suffix_rules": "all"}),
        ("myapp.herokuapp.com", {"suffix_rules": "icann"}),
        ("食狮.com.cn", {}),
        ("foo.bar.ck", {"suffix_rules": "all"}),
    ],
)
def test_contract_run_writes_the_result(
    docker_client: Any,
    example_plugin_image: str,
    task_dirs: tuple[Path, Path],
    psls: dict[str, PublicSuffixList],
    domain: str,
    parameters: dict[str, str],
) -> None:
    code, stderr, _ = run_task(
        docker_client, example_plugin_image, task_dirs, {"domain": domain}, parameters
    )
    assert code == 0, stderr
    result = json.loads((task_dirs[1] / "result.json").read_text("utf-8"))
    result.pop("suffix_rule")
    assert result == expected_result(domain, parameters.get("suffix_rules", "all"), psls)
    assert not (task_dirs[1] / "result.json.partial").exists()


@pytest.mark.parametrize(
    ("data", "parameters", "message"),
    [
        ({"name": "example.com"}, {}, 'no "domain" key'),
        (["example.com"], {}, "must be a JSON object"),
        ({"domain": 42}, {}, '"domain" must be a string, got number'),
        ({"domain": "a..b"}, {}, "empty label"),
        ({"domain": "example.com"}, {"suffix_rules": "private"}, "suffix_rules must be"),
    ],
)
def test_contract_run_rejects_bad_input(
    docker_client: Any,
    example_plugin_image: str,
    task_dirs: tuple[Path, Path],
    data: object,
    parameters: object,
    message: str,
) -> None:
    code, stderr, _ = run_task(docker_client, example_plugin_image, task_dirs, data, parameters)
    assert code == 2
    assert message in stderr
    assert list(task_dirs[1].iterdir()) == []


# --- the batch contract: many tasks in one container, real entrypoint -------------------


def item_line(item_id: str, data: object) -> str:
    return json.dumps({"id": item_id, "type": "domain", "data": data}, ensure_ascii=False)


def run_batch(
    client: Any, image: str, dirs: tuple[Path, Path], lines: list[str], parameters: object
) -> tuple[int, str, list[dict[str, Any]] | None, float]:
    """One batch run: exit code, stderr, the results.jsonl rows (None if no file), seconds."""
    input_dir, output_dir = dirs
    items = input_dir / "items.jsonl"
    items.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    params = input_dir / "parameters.json"
    params.write_text(json.dumps(parameters), encoding="utf-8")
    for path in (items, params):
        path.chmod(0o644)
    code, _, stderr, seconds = run_container(
        client,
        image,
        {
            str(input_dir): {"bind": "/input", "mode": "ro"},
            str(output_dir): {"bind": "/output", "mode": "rw"},
        },
        environment={},  # the agent sets no per-task variables for a batch
    )
    results = output_dir / "results.jsonl"
    if not results.exists():
        return code, stderr, None, seconds
    rows = [json.loads(line) for line in results.read_text("utf-8").splitlines()]
    return code, stderr, rows, seconds


def rows_by_id(rows: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """The rows keyed by id, after checking each has an id and exactly one of result/error."""
    assert rows is not None, "no results.jsonl"
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "an id has more than one line"
    for row in rows:
        assert set(row) in ({"id", "result"}, {"id", "error"}), row
    return {row["id"]: row for row in rows}


@pytest.mark.parametrize("mode", MODES)
def test_batch_run_matches_the_oracle(
    docker_client: Any,
    example_plugin_image: str,
    task_dirs: tuple[Path, Path],
    psls: dict[str, PublicSuffixList],
    mode: str,
) -> None:
    names = list(dict.fromkeys(real_sample() + EDGE_CASES))
    ids = {f"task-{uuid.uuid4()}": name for name in names + BAD_NAMES}
    lines = [item_line(item_id, {"domain": name}) for item_id, name in ids.items()]
    code, stderr, rows, _ = run_batch(
        docker_client, example_plugin_image, task_dirs, lines, {"suffix_rules": mode}
    )
    assert code == 0, stderr
    by_id = rows_by_id(rows)
    assert by_id.keys() == ids.keys()
    mismatches = []
    for item_id, name in ids.items():
        row = by_id[item_id]
        if name in BAD_NAMES:
            assert "domain" in row["error"], (name, row)
            continue
        assert "result" in row, f"{name!r}: {row.get('error')}"
        got = dict(row["result"])
        got.pop("suffix_rule")
        if got != expected_result(name, mode, psls):
            mismatches.append(f"{name!r} ({mode}): {got}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])
    assert f"{len(ids)} items, {len(names)} results, {len(BAD_NAMES)} errors" in stderr


GOOD_ITEMS = {
    "good-1": "WWW.Example.CO.UK.",
    "good-2": "myapp.herokuapp.com",
    "good-3": "食狮.com.cn",
}
# id -> (data, the message single mode prints for the same input after "bad input: ").
BAD_ITEMS: dict[str, tuple[object, str]] = {
    "bad-no-domain": (
        {"name": "example.com"},
        'input has no "domain" key (expected {"domain": "example.com"})',
    ),
    "bad-number": ({"domain": 42}, '"domain" must be a string, got number'),
    "bad-empty": ({"domain": ""}, "\"domain\" is empty: ''"),
    "bad-not-object": (["example.com"], "input must be a JSON object, got array"),
    "bad-idna": (
        {"domain": "a\u06dd.com"},
        # Error messages quote the input with repr(): U+06DD is not printable, so escaped.
        "\"domain\" 'a\\u06dd.com': label 'a\\u06dd' cannot be converted to IDNA: ",
    ),
}
# Lines no result can be attributed to: a warning on stderr naming the line, nothing else.
GARBAGE_LINES = {
    3: "this is not JSON {",
    6: '{"type": "domain", "data": {"domain": "example.com"}}',
}


@pytest.fixture(scope="module")
def mixed_batch(
    docker_client: Any, example_plugin_image: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, str, dict[str, dict[str, Any]]]:
    """Good items, bad items and unattributable lines in one batch run."""
    root = tmp_path_factory.mktemp("mixed")
    dirs = shared_dir(root / "input", 0o755), shared_dir(root / "output", 0o777)
    lines = [item_line(i, {"domain": name}) for i, name in GOOD_ITEMS.items()]
    lines += [item_line(i, data) for i, (data, _) in BAD_ITEMS.items()]
    for number, garbage in sorted(GARBAGE_LINES.items()):
        lines.insert(number - 1, garbage)
    code, stderr, rows, _ = run_batch(
        docker_client, example_plugin_image, dirs, lines, {"suffix_rules": "all"}
    )
    return code, stderr, rows_by_id(rows)


def test_mixed_batch_fails_only_the_bad_items(
    mixed_batch: tuple[int, str, dict[str, dict[str, Any]]], psls: dict[str, PublicSuffixList]
) -> None:
    code, stderr, by_id = mixed_batch
    assert code == 0, stderr
    assert by_id.keys() == GOOD_ITEMS.keys() | BAD_ITEMS.keys()
    for item_id, name in GOOD_ITEMS.items():
        result = dict(by_id[item_id]["result"])
        result.pop("suffix_rule")
        assert result == expected_result(name, "all", psls)
    for item_id, (_, message) in BAD_ITEMS.items():
        error = by_id[item_id]["error"]
        assert error == message or (message.endswith(": ") and error.startswith(message)), error
    assert "items.jsonl line 3 is not valid JSON" in stderr
    assert 'items.jsonl line 6 has no "id" string' in stderr


@pytest.mark.parametrize("item_id", list(BAD_ITEMS))
def test_batch_errors_are_the_single_mode_messages(
    docker_client: Any,
    example_plugin_image: str,
    task_dirs: tuple[Path, Path],
    mixed_batch: tuple[int, str, dict[str, dict[str, Any]]],
    item_id: str,
) -> None:
    data, _ = BAD_ITEMS[item_id]
    code, stderr, _ = run_task(docker_client, example_plugin_image, task_dirs, data, {})
    assert code == 2
    assert stderr == f"example-plugin: bad input: {mixed_batch[2][item_id]['error']}\n"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"suffix_rules": "private"}, "parameter suffix_rules must be 'all' or 'icann'"),
        (["all"], "parameters must be a JSON object"),
    ],
)
def test_batch_with_bad_parameters_fails_the_whole_run(
    docker_client: Any,
    example_plugin_image: str,
    task_dirs: tuple[Path, Path],
    parameters: object,
    message: str,
) -> None:
    lines = [item_line(i, {"domain": name}) for i, name in GOOD_ITEMS.items()]
    code, stderr, rows, _ = run_batch(
        docker_client, example_plugin_image, task_dirs, lines, parameters
    )
    assert code == 2
    assert message in stderr
    assert not rows
    assert list(task_dirs[1].iterdir()) == []


def test_empty_batch_writes_an_empty_results_file(
    docker_client: Any, example_plugin_image: str, task_dirs: tuple[Path, Path]
) -> None:
    code, stderr, rows, _ = run_batch(docker_client, example_plugin_image, task_dirs, [], {})
    assert code == 0, stderr
    assert rows == []


def test_image_metadata_matches_the_manifest(docker_client: Any, example_plugin_image: str) -> None:
    from task_contract.manifest import PluginManifest

    manifest = PluginManifest.model_validate_json((PLUGIN_DIR / "manifest.json").read_text())
    assert manifest.docker_image == example_plugin_image
    assert manifest.queue == "domain_queue"
    assert manifest.resolve_parameters({}) == {"suffix_rules": "all"}
    config = docker_client.images.get(example_plugin_image).attrs["Config"]
    assert config["User"] == "65534:65534"
    assert config["Entrypoint"] == ["python3", "/plugin/main.py"]
    assert config["Labels"]["version"] == manifest.version
