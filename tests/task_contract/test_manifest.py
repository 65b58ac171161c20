"""Plugin manifests and parameter checking."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from task_contract.errors import ParameterError
from task_contract.manifest import PluginManifest


def manifest(*parameters: dict[str, Any]) -> PluginManifest:
    return PluginManifest.model_validate(
        {
            "id": "p",
            "name": "P",
            "version": "1",
            "docker_image": "p:1",
            "parameters": list(parameters),
        }
    )


def test_defaults_fill_in_and_given_values_win() -> None:
    m = manifest(
        {"name": "a", "type": "string", "default": "x"},
        {"name": "b", "type": "integer", "default": 3},
        {"name": "c", "type": "boolean"},
    )
    assert m.resolve_parameters({}) == {"a": "x", "b": 3}
    assert m.resolve_parameters({"b": 5, "c": False}) == {"a": "x", "b": 5, "c": False}


@pytest.mark.parametrize(
    ("declared", "value", "ok"),
    [
        ("string", "s", True),
        ("string", 1, False),
        ("integer", 1, True),
        ("integer", 1.5, False),
        ("integer", True, False),
        ("number", 1, True),
        ("number", 1.5, True),
        ("number", "1", False),
        ("boolean", False, True),
        ("boolean", 0, False),
        ("object", {}, True),
        ("object", [], False),
        ("array", [1], True),
        ("array", None, False),
    ],
)
def test_types_are_json_types(declared: str, value: Any, ok: bool) -> None:
    m = manifest({"name": "v", "type": declared})
    if ok:
        assert m.resolve_parameters({"v": value}) == {"v": value}
    else:
        with pytest.raises(ParameterError) as err:
            m.resolve_parameters({"v": value})
        assert err.value.field == "plugin_parameters.v"
        assert err.value.message.startswith(f"expected {declared}, got ")


def test_unknown_and_missing_parameters_are_named() -> None:
    m = manifest({"name": "need", "type": "string", "required": True})
    with pytest.raises(ParameterError) as unknown:
        m.resolve_parameters({"need": "x", "other": 1})
    assert unknown.value.field == "plugin_parameters.other"
    assert "declared: need" in unknown.value.message
    with pytest.raises(ParameterError) as missing:
        m.resolve_parameters({})
    assert missing.value.field == "plugin_parameters.need"


def test_manifest_rejects_bad_declarations() -> None:
    with pytest.raises(ValidationError, match="duplicate parameter names: a"):
        manifest({"name": "a"}, {"name": "a"})
    with pytest.raises(ValidationError, match="default of 'n' is not of type integer"):
        manifest({"name": "n", "type": "integer", "default": "3"})
    with pytest.raises(ValidationError, match="queue"):
        PluginManifest.model_validate(
            {"id": "p", "name": "P", "version": "1", "docker_image": "p:1", "queue": "a b<script>"}
        )
    with pytest.raises(ValidationError, match="timeout_seconds"):
        PluginManifest.model_validate(
            {
                "id": "p",
                "name": "P",
                "version": "1",
                "docker_image": "p:1",
                "limits": {"timeout_seconds": 86400},
            }
        )
