"""Typed dependencies: the services, and who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control_plane.auth.tokens import matches
from control_plane.errors import Forbidden, Unauthorized
from control_plane.services.container import Services
from control_plane.store import WorkerRecord

_bearer = HTTPBearer(auto_error=False, description="Admin token or an agent's credential")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing 'Authorization: Bearer <token>' header")
    return credentials.credentials


def require_admin(services: ServicesDep, credentials: BearerDep) -> None:
    token = _token(credentials)
    if not matches(token, services.admin_hash):
        if token.startswith("dtswkr_"):
            raise Forbidden("an agent credential cannot call admin endpoints")
        raise Unauthorized("the bearer token is not this control plane's admin token")


def require_worker(worker_id: str, services: ServicesDep, credentials: BearerDep) -> WorkerRecord:
    return services.agents.authenticate(worker_id, _token(credentials))


AdminDep = Depends(require_admin)
WorkerDep = Annotated[WorkerRecord, Depends(require_worker)]
