"""The FastAPI application: assembles routers, error handlers and the services."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from control_plane import __version__
from control_plane.api import errors
from control_plane.api.limits import BodySizeLimit
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
        docs_url=None,
    )
    # Swagger UI served from the wheel, not a CDN: control planes often run offline.
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    app.state.services = services
    app.add_middleware(BodySizeLimit)
    errors.install(app)
    for module in (plugins, tasks, workers, system):
        app.include_router(module.router)
    return app
