"""`GET /v1/models`: the catalog in OpenAI's shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from reelgate.api.auth import check_model_access, current_key
from reelgate.api.deps import runtime
from reelgate.api.openapi import KEY_ERRORS, contract
from reelgate.api.schemas import ModelList, ModelObject
from reelgate.billing.keys import ApiKey
from reelgate.catalog import ModelEntry, tier_of
from reelgate.money import format_credits

router = APIRouter()


def _model(entry: ModelEntry, model_id: str | None = None) -> ModelObject:
    return ModelObject(
        id=model_id or entry.name,
        created=entry.created,
        seconds=[str(seconds) for seconds in entry.allowed_seconds],
        sizes=[f"{width}x{height}" for width, height in entry.allowed_sizes],
        price=format_credits(entry.price),
        price_per_second={tier_of(size): format_credits(entry.second_price(size)) for size in entry.allowed_sizes},
    )


@router.get("/v1/models", **contract(ModelList, KEY_ERRORS))
async def list_models(request: Request, key: Annotated[ApiKey, Depends(current_key)]) -> ModelList:
    allowed = key.allowed_models
    catalog = runtime(request).catalog
    listed = [(entry.name, entry) for entry in catalog] + list(catalog.aliases().items())
    return ModelList(
        data=[_model(entry, model_id) for model_id, entry in listed if allowed is None or entry.name in allowed]
    )


@router.get("/v1/models/{model_id:path}", **contract(ModelObject, (404, *KEY_ERRORS)))
async def retrieve_model(model_id: str, request: Request, key: Annotated[ApiKey, Depends(current_key)]) -> ModelObject:
    entry = runtime(request).catalog.get(model_id)
    check_model_access(key, entry.name)
    return _model(entry, model_id)
