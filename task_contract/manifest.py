"""The plugin manifest: what `POST /api/plugins` accepts, exactly as the seed README writes it.

Both the control plane (validation, storage) and the agent (limits, image) read it,
so it lives here and depends on pydantic only.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from task_contract.errors import ParameterError
from task_contract.json_values import check_json_value

MAX_TIMEOUT_SECONDS = 2 * 3600
"""Longest wall-clock limit a plugin may declare; the broker's visibility timeout (3 h by
default) must stay above it, or Redis would hand a still-running task to a second agent."""

ParameterType = Literal["string", "integer", "number", "boolean", "object", "array"]

# Queue names become Redis keys and show up in the dashboard: keep them plain.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
# Keys the Redis transport, Celery and the agents' own queues already use.
_RESERVED_QUEUES = {"unacked", "unacked_index", "unacked_mutex", "celery", "celeryev"}
_RESERVED_PREFIXES = ("dts.", "_kombu", "celery@", "celeryev.")
# registry/name:tag or name@sha256:digest, as `docker` accepts them.
_IMAGE_RE = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)


class PluginParameter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    type: ParameterType = "string"
    description: str = Field(default="", max_length=2000)
    required: bool = False
    default: Any = None

    @model_validator(mode="after")
    def _default_fits(self) -> PluginParameter:
        if self.default is not None:
            check_json_value(self.default, "default")
            if self.required:
                raise ValueError(f"'{self.name}' is required, so a default would never be used")
        return self


class PluginLimits(BaseModel):
    """Optional per-plugin resource declarations; the agent applies its own defaults otherwise."""

    model_config = ConfigDict(extra="forbid")

    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SECONDS)
    memory_mb: int | None = Field(default=None, ge=16, le=1024 * 1024)
    network: bool = False


class PluginBatch(BaseModel):
    """Opt-in batch contract: the agent runs one container over up to `max_items` tasks,
    with `/input/items.jsonl` in and `/output/results.jsonl` out (see docs/plugins.md)."""

    model_config = ConfigDict(extra="forbid")

    max_items: int = Field(default=100, ge=1, le=10_000)
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SECONDS)
    """Wall-clock limit for one batch run; default: the agent's timeout."""


class PluginManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=50)
    docker_image: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=2000)
    queue: str = "default"
    parameters: list[PluginParameter] = Field(default_factory=list)
    limits: PluginLimits = Field(default_factory=PluginLimits)
    batch: PluginBatch | None = None
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 100)")
        return value

    @field_validator("queue")
    @classmethod
    def _check_queue(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 100)")
        if value.lower() in _RESERVED_QUEUES or value.lower().startswith(_RESERVED_PREFIXES):
            raise ValueError(
                f"'{value}' is reserved by the broker or the agents; pick another name"
            )
        return value

    @field_validator("docker_image")
    @classmethod
    def _check_image(cls, value: str) -> str:
        if not _IMAGE_RE.fullmatch(value):
            raise ValueError(
                "not a Docker image reference (expected name:tag, registry/name:tag or "
                "name@sha256:digest, lowercase name)"
            )
        return value

    @field_validator("parameters")
    @classmethod
    def _unique_names(cls, value: list[PluginParameter]) -> list[PluginParameter]:
        names = [p.name for p in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate parameter names: {', '.join(dupes)}")
        for param in value:
            if param.default is not None and not _matches(param.type, param.default):
                raise ValueError(f"default of '{param.name}' is not of type {param.type}")
        return value

    def resolve_parameters(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """Check `given` against the declared parameters and fill in defaults.

        Raises ParameterError naming the offending field.
        """
        given = dict(given or {})
        declared = {p.name: p for p in self.parameters}
        for name in given:
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise ParameterError(
                    f"plugin_parameters.{name}",
                    f"unknown parameter for plugin '{self.id}' (declared: {known})",
                )
        resolved: dict[str, Any] = {}
        for param in self.parameters:
            if param.name in given:
                value = given[param.name]
                if not _matches(param.type, value):
                    raise ParameterError(
                        f"plugin_parameters.{param.name}",
                        f"expected {param.type}, got {_json_type(value)}",
                    )
                resolved[param.name] = value
            elif param.required:
                raise ParameterError(
                    f"plugin_parameters.{param.name}", "required parameter is missing"
                )
            elif param.default is not None:
                resolved[param.name] = param.default
        return resolved


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _matches(declared: str, value: Any) -> bool:
    actual = _json_type(value)
    if declared == "number":
        return actual in ("integer", "number")
    return actual == declared
