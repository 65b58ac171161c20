"""The admin REST client the CLI commands share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from control_plane.cli.settings import CliSettings


class CliError(Exception):
    """Raised with a message for the terminal (what failed and what to do)."""


class AdminClient:
    def __init__(self, settings: CliSettings, timeout: float = 300.0) -> None:
        if settings.admin_token is None:
            raise CliError(
                "no admin token: set DTS_ADMIN_TOKEN (the control plane printed it at first "
                "start) or pass --token"
            )
        self.base_url = settings.server_url
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the control plane at {self.base_url} ({exc}); is it running? "
                "(python -m control_plane)"
            ) from exc
        if response.status_code >= 400:
            raise CliError(f"{method} {path} failed ({response.status_code}): {_detail(response)}")
        return response.json()

    def stream(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        try:
            with self._http.stream("GET", path, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CliError(
                        f"GET {path} failed ({response.status_code}): {_detail(response)}"
                    )
                yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise CliError(f"download from {self.base_url} failed: {exc}") from exc

    def close(self) -> None:
        self._http.close()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)
