"""Tasks: submit one (the seed's JSON), many (JSON or an uploaded file), list, get, export."""

from __future__ import annotations

import io
import json
import tempfile
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from control_plane import defaults
from control_plane.api.deps import AdminDep, ServicesDep
from control_plane.errors import InvalidInput, NotFound
from control_plane.exporters import EXPORTERS
from control_plane.store import TaskFilter
from task_contract.api import (
    BulkAccepted,
    BulkCreate,
    TaskCreate,
    TaskCreated,
    TaskPage,
    TaskStatus,
    TaskView,
    check_task_type,
)
from task_contract.items import ItemFormat, ItemFormatError, parse_items
from task_contract.json_values import JsonValueError, check_json_value

router = APIRouter(prefix="/api/tasks", tags=["tasks"], dependencies=[AdminDep])


def _filter(
    status: TaskStatus | None = None,
    plugin_id: str | None = None,
    type: str | None = None,
    queue: str | None = None,
    worker_id: str | None = None,
    batch_id: str | None = None,
) -> TaskFilter:
    return TaskFilter(
        status=status,
        plugin_id=plugin_id,
        type=type,
        queue=queue,
        worker_id=worker_id,
        batch_id=batch_id,
    )


FilterDep = Annotated[TaskFilter, Depends(_filter)]


@router.post("", status_code=201, response_model=TaskCreated)
def submit_task(body: TaskCreate, services: ServicesDep) -> TaskCreated:
    """Submit one item (the seed's task JSON): checked against the plugin's parameters."""
    return services.submission.submit_one(body)


@router.post("/bulk", status_code=202, response_model=BulkAccepted)
def submit_bulk(body: BulkCreate, services: ServicesDep) -> BulkAccepted:
    """Submit many items for one plugin in one request; every item becomes a task."""
    return services.submission.submit_many(
        body.plugin_id, body.type, body.items, body.plugin_parameters
    )


@router.post("/upload", status_code=202, response_model=BulkAccepted)
async def upload_items(
    request: Request,
    services: ServicesDep,
    plugin_id: str,
    type: Annotated[str, Query(min_length=1, max_length=100)],
    format: ItemFormat = "jsonl",
    field: str | None = None,
    parameters: str = "{}",
) -> BulkAccepted:
    """Submit a file of items as the raw request body (JSONL, CSV with a header, or one value
    a line). The whole file is checked first: a bad line stores nothing and is named."""
    params = _parameters(parameters)
    try:
        check_task_type(type)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="type") from exc
    manifest = await run_in_threadpool(services.submission.plugin, plugin_id)
    await run_in_threadpool(services.submission.resolve_parameters, manifest, params)
    with tempfile.TemporaryFile() as spool:
        # Spooled to disk so memory stays flat however large the upload is.
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        count = await run_in_threadpool(_validate, text, format, field or type)
        if count == 0:
            raise InvalidInput("the upload holds no items", field="body")
        text.seek(0)
        return await run_in_threadpool(
            services.submission.submit_many,
            plugin_id,
            type,
            parse_items(text, format, field or type),
            params,
        )


@router.get("", response_model=TaskPage)
def list_tasks(
    services: ServicesDep,
    flt: FilterDep,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
    limit: Annotated[int, Query(ge=1, le=defaults.MAX_PAGE)] = 50,
) -> TaskPage:
    """Tasks newest first, filtered by status, plugin, type, queue, worker or batch."""
    return TaskPage(
        items=services.store.list_tasks(flt, offset, limit),
        total=services.store.count_tasks(flt),
        offset=offset,
        limit=limit,
    )


@router.get("/counts", response_model=dict[str, int])
def count_tasks(services: ServicesDep, flt: FilterDep) -> dict[str, int]:
    """Tasks per status (the status filter is ignored here)."""
    counts = services.store.count_by_status(flt)
    return {status.value: counts.get(status, 0) for status in TaskStatus}


@router.get("/export")
def export_tasks(
    services: ServicesDep,
    flt: FilterDep,
    format: str = "jsonl",
) -> StreamingResponse:
    """Stream matching tasks with their results, oldest first, as JSONL or CSV."""
    if format not in EXPORTERS:
        raise InvalidInput(f"unknown export format '{format}' (use jsonl or csv)", field="format")
    render, media_type = EXPORTERS[format]
    return StreamingResponse(
        render(services.store.iter_tasks(flt)),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="tasks.{format}"'},
    )


@router.get("/{task_id}", response_model=TaskView)
def get_task(task_id: str, services: ServicesDep) -> TaskView:
    task = services.store.get_task(task_id)
    if task is None:
        raise NotFound(f"no task '{task_id}'", field="task_id")
    return task


def _parameters(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(
            f"parameters is not valid JSON: {exc}"[:300], field="parameters"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidInput("parameters must be a JSON object", field="parameters")
    try:
        check_json_value(value, "parameters")
    except JsonValueError as exc:
        raise InvalidInput(exc.message, field=exc.path) from exc
    return value


def _validate(text: IO[str], fmt: ItemFormat, field: str) -> int:
    count = 0
    try:
        for _ in parse_items(text, fmt, field):
            count += 1
    except ItemFormatError as exc:
        raise InvalidInput(
            f"line {exc.line}: {exc.message}; nothing was stored", field=f"body.line[{exc.line}]"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the upload is not UTF-8 text ({exc.reason} at byte {exc.start})", field="body"
        ) from exc
    return count
