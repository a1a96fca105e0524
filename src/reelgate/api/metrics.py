"""`/metrics`: Prometheus exposition of this process's metrics (see `observability/metrics.py`)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from reelgate.api.deps import runtime
from reelgate.observability.metrics import CONTENT_TYPE_LATEST
from reelgate.tasks import repository as repo

router = APIRouter()

log = logging.getLogger(__name__)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    rt = runtime(request)
    try:
        async with rt.engine.connect() as conn:
            rt.metrics.set_queue_depth(await repo.queued_by_backend(conn))
    except (SQLAlchemyError, OSError):
        log.warning("metrics: the queue depth could not be read", exc_info=True)
    return Response(rt.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
