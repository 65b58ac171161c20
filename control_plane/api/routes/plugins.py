"""Plugins: register (or update by id), list, get."""

from __future__ import annotations

from fastapi import APIRouter, Response

from control_plane.api.deps import AdminDep, ServicesDep
from control_plane.errors import NotFound
from control_plane.services.clock import utcnow
from task_contract.manifest import PluginManifest

router = APIRouter(prefix="/api/plugins", tags=["plugins"], dependencies=[AdminDep])


@router.post("", status_code=201, response_model=PluginManifest)
def register_plugin(
    manifest: PluginManifest, services: ServicesDep, response: Response
) -> PluginManifest:
    """Register a plugin, or update it when the id exists. Agents consuming all queues pick up
    its queue on their next heartbeat."""
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
