"""Request size limits, checked from Content-Length before a body is read."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from control_plane import defaults


class BodySizeLimit:
    """413 for a body declared larger than the limit; uploads (streamed to disk) get more."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = (
                defaults.MAX_UPLOAD_BYTES
                if scope["path"].endswith("/upload")
                else defaults.MAX_BODY_BYTES
            )
            length = dict(scope.get("headers", [])).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                await _too_large(send, limit)
                return
        await self.app(scope, receive, send)


async def _too_large(send: Send, limit: int) -> None:
    detail = (
        f"request body larger than {limit // (1024 * 1024)} MiB; split it, or send a file "
        "of items to /api/tasks/upload"
    )
    body = json.dumps({"detail": detail, "field": "body"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
