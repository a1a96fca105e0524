"""`/healthz` (the process answers) and `/readyz` (the database answers, the workers run, the disk has room
for a video, the storage bucket answers, models are loaded)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from reelgate.api.deps import runtime
from reelgate.api.errors import error_response
from reelgate.api.openapi import contract
from reelgate.api.schemas import Readiness
from reelgate.backends.base import lifecycle
from reelgate.errors import ServiceUnavailable

router = APIRouter()

#: A database that takes longer than this to answer `SELECT 1` counts as down.
DATABASE_TIMEOUT_SECONDS = 3.0

#: What each failing check says in the 503 error message.
FAILURES = {
    "database": "the database does not answer",
    "workers": "the worker pool is not running",
    "disk": "too little free space for a video (REELGATE_MIN_FREE_BYTES)",
    "storage": "the storage bucket does not answer",
}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", **contract(Readiness, (503,)))
async def readyz(request: Request) -> JSONResponse:
    """200 with each check `ok`, or 503 in OpenAI's error envelope naming the checks that fail."""
    rt = runtime(request)
    checks = {"database": await _database_ok(request), "workers": rt.dispatcher.alive, "disk": not rt.low_disk()}
    if rt.settings.storage_url:
        checks["storage"] = await rt.storage.reachable()
    failing = [f"{name}: {FAILURES[name]}" for name, ok in checks.items() if not ok]
    # Only backends that load something (model weights) have a check: loading, or failed to load.
    problems = runtime(request).backend_problems()
    failing += [f"backend {name}: {problem}" for name, problem in problems.items()]
    if failing:
        return error_response(ServiceUnavailable(f"Not ready: {'; '.join(failing)}."))
    if any(lifecycle(backend) for backend in runtime(request).backends.values()):
        checks["backends"] = True
    return JSONResponse({"status": "ok", "checks": dict.fromkeys(checks, "ok")})


async def _database_ok(request: Request) -> bool:
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS), runtime(request).engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        return False
    return True
