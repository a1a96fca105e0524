"""Refusals that say what to do next: the models that exist, the balance left, where keys come from."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.billing.keys import create_key, new_secret
from reelgate.money import parse_credits
from tests.conftest import assert_openai_error


@pytest.fixture
def backends() -> dict[str, Any]:
    return {"procedural": GatedBackend(FailingBackend(), name="procedural")}


async def _key(client: httpx.AsyncClient, balance: str = "10", **options: Any) -> str:
    async with client.app.state.runtime.engine.begin() as conn:  # type: ignore[attr-defined]
        _, secret = await create_key(conn, balance=parse_credits(balance), **options)
    return secret


def _chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "海边日落"}], "stream": False}


async def test_an_unknown_model_lists_the_available_ones(app_client: httpx.AsyncClient) -> None:
    secret = await _key(app_client)
    headers = {"Authorization": f"Bearer {secret}"}
    response = await app_client.post("/v1/videos", json={"prompt": "x", "model": "sora-9"}, headers=headers)
    assert_openai_error(response, 404, "model_not_found")
    message = response.json()["error"]["message"]
    assert "`sora-9`" in message and "Available models:" in message
    assert "sora-2-hd-15s-chat" in message and "sora-2-hd-10s-chat" in message


async def test_a_key_limited_to_some_models_is_told_which(app_client: httpx.AsyncClient) -> None:
    secret = await _key(app_client, allowed_models=["sora-2-hd-10s-chat"])
    response = await app_client.post(
        "/v1/chat/completions", json=_chat("sora-2-hd-15s-chat"), headers={"Authorization": secret}
    )
    assert_openai_error(response, 404, "model_not_found")
    assert response.json()["error"]["message"].endswith("Available models: sora-2-hd-10s-chat.")


async def test_too_low_a_balance_names_price_and_balance(app_client: httpx.AsyncClient) -> None:
    secret = await _key(app_client, balance="0.5")
    response = await app_client.post(
        "/v1/chat/completions", json=_chat("sora-2-hd-15s-chat"), headers={"Authorization": f"Bearer {secret}"}
    )
    assert_openai_error(response, 429, "insufficient_quota")
    message = response.json()["error"]["message"]
    assert "costs 1 credits" in message and "has 0.5 left" in message and "reelgate keys topup key_" in message


async def test_an_unknown_well_formed_key_is_told_where_keys_come_from(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/v1/models", headers={"Authorization": f"Bearer {new_secret()}"})
    assert_openai_error(response, 401, "invalid_api_key")
    message = response.json()["error"]["message"]
    assert message.startswith("Incorrect API key provided: sk-***")
    assert "reelgate keys create" in message and "data folder" in message


async def test_a_key_of_another_shape_gets_the_bare_refusal(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/v1/models", headers={"Authorization": "Bearer sk-not-one-of-ours"})
    assert_openai_error(response, 401, "invalid_api_key")
    assert response.json()["error"]["message"] == "Incorrect API key provided: sk-***ours."


async def test_models_list_the_seconds_and_sizes_a_client_may_choose(app_client: httpx.AsyncClient) -> None:
    secret = await _key(app_client)
    models = (await app_client.get("/v1/models", headers={"Authorization": secret})).json()["data"]
    by_id = {model["id"]: model for model in models}
    assert by_id["sora-2"]["seconds"] == ["4", "8", "12"]
    assert by_id["sora-2"]["sizes"] == ["720x1280", "1280x720"]  # portrait default, landscape default
    assert by_id["sora-2-hd-10s-chat"]["seconds"] == ["10"]
    assert by_id["sora-2-hd-10s-chat"]["sizes"] == ["144x256", "256x144"]  # the tests' small sizes
    assert by_id["sora-2-pro"]["sizes"] == ["720x1280", "1280x720", "1024x1792", "1792x1024"]


async def test_dated_snapshots_are_listed_and_described_as_their_model(app_client: httpx.AsyncClient) -> None:
    secret = await _key(app_client)
    headers = {"Authorization": secret}
    by_id = {m["id"]: m for m in (await app_client.get("/v1/models", headers=headers)).json()["data"]}
    assert by_id["sora-2-2025-10-06"]["seconds"] == by_id["sora-2"]["seconds"]
    assert by_id["sora-2-pro-2025-10-06"]["sizes"] == by_id["sora-2-pro"]["sizes"]
    one = (await app_client.get("/v1/models/sora-2-2025-12-08", headers=headers)).json()
    assert one["id"] == "sora-2-2025-12-08" and one["seconds"] == ["4", "8", "12"]
