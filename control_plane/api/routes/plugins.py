"""Plugins: register (or update by id), list, get."""

from __future__ import annotations

from fastapi import APIRouter, Response

from control_plane.api.deps import AdminDep, ServicesDep
from control_plane.errors import Conflict, NotFound
from control_plane.services.clock import utcnow
from control_plane.store import TaskFilter
from task_contract.api import TaskStatus
from task_contract.manifest import PluginManifest

router = APIRouter(prefix="/api/plugins", tags=["plugins"], dependencies=[AdminDep])


@router.post("", status_code=201, response_model=PluginManifest)
def register_plugin(
    manifest: PluginManifest, services: ServicesDep, response: Response
) -> PluginManifest:
    """Register a plugin, or update it when the id exists. Agents consuming all queues pick up
    its queue on their next heartbeat."""
    existing = services.store.get_plugin(manifest.id)
    if existing is not None and existing.manifest.queue != manifest.queue:
        unfinished = sum(
            services.store.count_tasks(TaskFilter(plugin_id=manifest.id, status=status))
            for status in (TaskStatus.queued, TaskStatus.running)
        )
        if unfinished:
            # Their messages sit in the old queue, which agents would stop consuming.
            raise Conflict(
                f"plugin '{manifest.id}' has {unfinished} unfinished task(s) on queue "
                f"'{existing.manifest.queue}'; let them finish before moving it to "
                f"'{manifest.queue}'",
                field="queue",
            )
    record, created = services.store.upsert_plugin(manifest, utcnow())
    response.status_code = 201 if created else 200
    return record.manifest


@router.get("", response_model=list[PluginManifest])
def list_plugins(services: ServicesDep) -> list[PluginManifest]:
    return [record.manifest for record in services.store.list_plugins()]


@router.get("/{plugin_id}", response_model=PluginManifest)
def get_plugin(plugin_id: str, services: ServicesDep) -> PluginManifest:
    record = services.store.get_plugin(plugin_id)
    if record is None:
        raise NotFound(f"no plugin '{plugin_id}'", field="plugin_id")
    return record.manifest
