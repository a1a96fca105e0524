"""Prices per second by resolution tier: listed in /v1/models and charged at admission by the size asked for."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from reelgate.app import create_app
from reelgate.billing.keys import create_key
from reelgate.catalog import Catalog
from reelgate.money import parse_credits
from tests.conftest import make_settings

TIERED = {
    "backend": "procedural",
    "seconds": 4,
    "portrait": "64x112",
    "landscape": "112x64",
    "extra_sizes": ["128x224"],
    "fps": 8,
    "price": "0.5",
    "price_per_second": "0.1",
    "price_per_second_by_tier": {"128p": "0.25"},
}


async def test_a_higher_tier_second_costs_more_and_models_say_so(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, models={"tiered": TIERED}))
    async with app.router.lifespan_context(app):
        async with app.state.runtime.engine.begin() as conn:
            _, secret = await create_key(conn, balance=parse_credits("10"))
        headers = {"Authorization": secret}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            model = (await client.get("/v1/models/tiered", headers=headers)).json()
            for size in ("64x112", "128x224"):
                created = await client.post(
                    "/v1/videos", headers=headers, json={"model": "tiered", "prompt": "雪山", "size": size}
                )
                assert created.status_code == 200, created.text
            grants = (await client.get("/v1/dashboard/billing/credit_grants", headers=headers)).json()
    assert (model["price"], model["price_per_second"]) == ("0.5", {"64p": "0.1", "128p": "0.25"})
    assert grants["total_used"] == pytest.approx((0.5 + 4 * 0.1) + (0.5 + 4 * 0.25))  # 0.9 + 1.5


def test_tier_prices_must_name_tiers() -> None:
    with pytest.raises(ValueError, match="price_per_second_by_tier"):
        Catalog.build({"tiered": {**TIERED, "price_per_second_by_tier": {"HD": "1"}}})
