"""Control-plane errors. Each maps to one HTTP status in control_plane.api.errors."""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Root of errors the control plane turns into HTTP responses."""

    status_code = 500

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ControlPlaneError):
    """The request is well-formed JSON but a field's value is wrong (names the field)."""

    status_code = 422


class NotFound(ControlPlaneError):
    """A referenced plugin, task or worker does not exist."""

    status_code = 404


class Unauthorized(ControlPlaneError):
    """No or an unknown bearer token."""

    status_code = 401


class Forbidden(ControlPlaneError):
    """A valid token that may not do this (an agent acting as another agent or as admin)."""

    status_code = 403


class Conflict(ControlPlaneError):
    """The request clashes with the task's state (e.g. starting a finished task)."""

    status_code = 409


class Unavailable(ControlPlaneError):
    """The broker or store cannot be reached; the caller should retry later."""

    status_code = 503
