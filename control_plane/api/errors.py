"""Every error becomes JSON in one place: `{"detail": message, "field": dotted.path|null}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from control_plane.errors import ControlPlaneError
from control_plane.queue.publisher import BrokerError
from control_plane.store import StoreError

log = logging.getLogger(__name__)


def _field(loc: tuple[object, ...]) -> str:
    # Drop FastAPI's leading "body"/"query" so the path reads like the payload.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        loc = tuple(first.get("loc", ()))
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = first.get("ctx", {}).get("error", first["msg"])
        message = f"request body is not valid JSON{where}: {reason}"
        field = "body"
    else:
        field = _field(tuple(first.get("loc", ())))
        message = f"{field}: {first['msg']}"
    return JSONResponse(
        status_code=422,
        content={
            "detail": message,
            "field": field,
            "errors": [
                {"field": _field(tuple(e.get("loc", ()))), "message": e["msg"]} for e in errors
            ],
        },
    )


async def _control_plane(_: Request, exc: ControlPlaneError) -> JSONResponse:
    # "plugin_parameters.depth: expected integer, got string" reads well in a terminal;
    # body-level messages already say where (e.g. "line 101: ...").
    named = exc.field and not exc.field.startswith("body")
    detail = f"{exc.field}: {exc.message}" if named else exc.message
    return JSONResponse(status_code=exc.status_code, content={"detail": detail, "field": exc.field})


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("service unavailable: %s", exc)
    return JSONResponse(
        status_code=503, content={"detail": f"{exc}; retry in a moment", "field": None}
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(ControlPlaneError, _control_plane)  # type: ignore[arg-type]
    app.add_exception_handler(BrokerError, _unavailable)
    app.add_exception_handler(StoreError, _unavailable)
