"""A cap on request bodies, enforced while they are read.

Why: validation (``max_length``) runs after the whole body is in memory; without a cap a client could
make the server buffer any amount before being told 422. Declared lengths above the cap are refused
before reading; chunked bodies are counted as they arrive.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException

MAX_BODY = 64 * 1024  # an intent is at most 8,000 characters; a review body far less


def _too_large(limit: int) -> str:
    return f"request body over {limit} bytes"


class BodyLimit:
    """Pure ASGI middleware: 413 for a body over ``limit`` bytes."""

    def __init__(self, app: Any, limit: int = MAX_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # FastAPI re-raises an HTTPException from reading the body: a 413
                    raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": _too_large(self.limit)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
