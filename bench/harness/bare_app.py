"""The bare-route anchor's app: ``GET /v1/files/{file_id}`` answering with the JSON in the file
``FILESAPI_BENCH_BARE_JSON`` names (what filesapi answered for one file), and nothing else: no
auth, no database, no middleware."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@functools.cache
def body() -> bytes:
    return Path(os.environ["FILESAPI_BENCH_BARE_JSON"]).read_bytes()


async def file(request: Request) -> Response:
    return Response(body(), media_type="application/json")


app = Starlette(routes=[Route("/v1/files/{file_id}", file, methods=["GET"])])
