"""The FastAPI application: assembles routers, error handlers and the services."""

from __future__ import annotations

from fastapi import FastAPI

from control_plane import __version__
from control_plane.api import errors
from control_plane.api.routes import plugins, system, tasks, workers
from control_plane.services.container import Services


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Distributed Task System control plane",
        version=__version__,
        description=(
            "Submit items, register Docker plugins, and serve agents. "
            "Every call carries `Authorization: Bearer <token>`: the admin token for "
            "plugins and tasks, an agent's own credential for the agent routes."
        ),
    )
    app.state.services = services
    errors.install(app)
    for module in (plugins, tasks, workers, system):
        app.include_router(module.router)
    return app
