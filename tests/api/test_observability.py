"""`/metrics` moves with the traffic, `/healthz` and `/readyz` tell the truth, log lines carry ids, never keys."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.backends.procedural import ProceduralBackend
from reelgate.observability.logging import configure_logging, log_context, redact
from tests.conftest import SMALL_MODELS, assert_openai_error, live_server, make_settings

BODY = {"model": "sora-2-hd-10s-chat", "messages": [{"role": "user", "content": "雨中的红伞 16:9"}]}

FAMILIES = {
    "reelgate_http_requests",
    "reelgate_http_request_duration_seconds",
    "reelgate_tasks",
    "reelgate_queue_depth",
    "reelgate_queue_depth_by_backend",
    "reelgate_claim_seconds",
    "reelgate_notification_lag_seconds",
    "reelgate_leases_lost",
    "reelgate_generation_seconds",
    "reelgate_active_streams",
    "reelgate_charged_credits",
    "reelgate_refunded_credits",
}


async def _key(client: httpx.AsyncClient, balance: int = 10_000_000) -> str:
    from reelgate.billing.keys import create_key

    async with client.app.state.runtime.engine.begin() as conn:  # type: ignore[attr-defined]
        _, secret = await create_key(conn, balance=balance)
    return secret


async def _chat(client: httpx.AsyncClient, key: str, body: dict[str, Any] = BODY) -> str:
    """Send a non-streamed chat request (it returns when the task has ended); the task ID."""
    response = await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    content = response.json()["choices"][0]["message"]["content"]
    return re.search(r"ID: `(task_\w+)`", content).group(1)  # type: ignore[union-attr]


async def _scrape(client: httpx.AsyncClient, url: str = "/metrics") -> dict[tuple[str, frozenset[Any]], float]:
    """Every sample of `/metrics`, parsed with prometheus-client's own parser, by (name, labels)."""
    response = await client.get(url)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(response.text))
    assert {family.name for family in families} >= FAMILIES
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_move_with_the_traffic(app_client: httpx.AsyncClient) -> None:
    before = await _scrape(app_client)
    key = await _key(app_client)
    await _chat(app_client, key)
    await app_client.get("/no/such/path")
    after = await _scrape(app_client)

    route = {"method": "POST", "route": "/v1/chat/completions", "status": "200"}
    assert _value(before, "reelgate_http_requests_total", **route) == 0
    assert _value(after, "reelgate_http_requests_total", **route) == 1
    assert _value(after, "reelgate_http_requests_total", method="GET", route="/metrics", status="200") == 1
    # Unknown paths share one label: raw paths would make the series unbounded.
    assert _value(after, "reelgate_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any("/no/such/path" in str(labels) for _, labels in after)
    assert _value(after, "reelgate_http_request_duration_seconds_count", method="POST", route=route["route"]) == 1
    model = BODY["model"]
    assert _value(after, "reelgate_tasks_total", model=model, status="completed") == 1
    assert _value(after, "reelgate_charged_credits_total", model=model) == pytest.approx(0.8)
    assert _value(after, "reelgate_refunded_credits_total", model=model) == 0
    assert _value(after, "reelgate_generation_seconds_count", backend="procedural") == 1
    assert _value(after, "reelgate_queue_depth") == 0
    assert _value(after, "reelgate_claim_seconds_count") >= 1  # the worker's claim of that task
    assert _value(after, "reelgate_leases_lost_total") == 0


async def test_failures_and_refunds_are_counted(tmp_path: Path) -> None:
    from reelgate.app import create_app

    models = {**SMALL_MODELS, "broken": {"backend": "fail", "seconds": 5, "price": "0.25"}}
    settings = make_settings(tmp_path, models=models, charge_on_failure=False)
    app = create_app(settings, {"fail": FailingBackend()})
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        await _chat(client, await _key(client), {**BODY, "model": "broken"})
        samples = await _scrape(client)
    assert _value(samples, "reelgate_tasks_total", model="broken", status="failed") == 1
    assert _value(samples, "reelgate_charged_credits_total", model="broken") == pytest.approx(0.25)
    assert _value(samples, "reelgate_refunded_credits_total", model="broken") == pytest.approx(0.25)
    assert _value(samples, "reelgate_generation_seconds_count", backend="fail") == 0  # only successes are timed


async def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    from reelgate.app import create_app

    first, second = create_app(make_settings(tmp_path / "a")), create_app(make_settings(tmp_path / "b"))
    first.state.metrics.active_streams.inc()
    assert second.state.metrics.active_streams._value.get() == 0


async def test_active_streams_count_open_streams_and_disconnects(tmp_path: Path) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    async with (
        live_server(make_settings(tmp_path), {"procedural": gated}) as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
    ):
        key = await server.create_key()
        body = {**BODY, "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body, headers={"Authorization": key}) as r:
            lines = r.aiter_lines()  # held: a dropped iterator would close the connection at once
            await anext(lines)
            assert _value(await _scrape(client), "reelgate_active_streams") == 1
        # The client left mid-stream: the gauge comes back down once the server notices.
        for _ in range(200):
            if _value(await _scrape(client), "reelgate_active_streams") == 0:
                break
            await asyncio.sleep(0.05)
        assert _value(await _scrape(client), "reelgate_active_streams") == 0
        gated.gate.set()


async def test_healthz_and_readyz(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/healthz")).json() == {"status": "ok"}
    ready = await app_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "workers": "ok", "disk": "ok"}}


async def test_readyz_names_an_unreachable_database(app_client: httpx.AsyncClient, tmp_path: Path) -> None:
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    healthy, runtime.engine = runtime.engine, create_async_engine(f"sqlite+aiosqlite:///{blocker / 'db.sqlite'}")
    try:
        response = await app_client.get("/readyz")
        metrics = await app_client.get("/metrics")  # still answers without its database
    finally:
        await runtime.engine.dispose()
        runtime.engine = healthy
    assert_openai_error(response, 503, "service_unavailable", "server_error")
    message = response.json()["error"]["message"]
    assert "database" in message and "workers" not in message
    assert metrics.status_code == 200
    assert (await app_client.get("/healthz")).status_code == 200


async def test_readyz_names_stopped_workers(app_client: httpx.AsyncClient) -> None:
    await app_client.app.state.runtime.dispatcher.stop()  # type: ignore[attr-defined]
    response = await app_client.get("/readyz")
    assert_openai_error(response, 503, "service_unavailable")
    assert "workers" in response.json()["error"]["message"]
    assert response.headers["retry-after"]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Root logging sent as JSON to a buffer for the test; the previous set-up restored after."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging(make_settings(Path("unused"), log_format="json"), stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_json_logs_carry_task_and_key_ids_never_the_key(
    app_client: httpx.AsyncClient, log_stream: io.StringIO
) -> None:
    key = await _key(app_client)
    task_id = await _chat(app_client, key)
    logging.getLogger("reelgate.test").info("a careless line with the key %s in it", key)

    text = log_stream.getvalue()
    assert key not in text and key[3:] not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    about_task = [line for line in lines if line.get("task_id") == task_id]
    assert {line["message"] for line in about_task} >= {f"task {task_id}: completed"}
    async with app_client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        from reelgate.tasks import repository as repo

        task = await repo.get_task(conn, task_id)
    assert task is not None and all(line["key_id"] == task.key_id for line in about_task)
    assert lines[-1]["message"] == "a careless line with the key sk-*** in it"
    assert "task_id" not in lines[-1]  # the request's and the worker's fields do not leak out


async def test_each_request_is_logged_once_as_it_ends(tmp_path: Path, log_stream: io.StringIO) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    async with (
        live_server(make_settings(tmp_path), {"procedural": gated}) as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
    ):
        key = await server.create_key()
        body = {**BODY, "stream": True}
        url = "/v1/chat/completions?via=test"
        async with client.stream("POST", url, json=body, headers={"Authorization": key}) as response:
            lines = response.aiter_lines()
            first = await anext(lines)
            # The stream's first chunk has left and the task is held: no line yet.
            assert first.startswith("data: ") and "reelgate.access" not in log_stream.getvalue()
            gated.gate.set()
            text = first + "".join([line async for line in lines])
        task_id = re.search(r"ID: `(task_\w+)`", text).group(1)  # type: ignore[union-attr]
        refused = await client.post("/v1/chat/completions", json=body, headers={"Authorization": "sk-no-such-key"})
        assert refused.status_code == 401

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    streamed, unknown = [line for line in lines if line["logger"] == "reelgate.access"]
    pattern = r'127\.0\.0\.1:\d+ - "POST /v1/chat/completions(\?via=test)? HTTP/1\.1" (\d{3}) (\d+\.\d{3})s'
    match = re.fullmatch(pattern, streamed["message"])
    assert match is not None and match[1] and match[2] == "200"
    assert streamed["task_id"] == task_id and streamed["key_id"].startswith("key_")
    match = re.fullmatch(pattern, unknown["message"])
    assert match is not None and match[2] == "401" and "key_id" not in unknown and "task_id" not in unknown
    assert key not in log_stream.getvalue()


def test_text_lines_carry_the_fields_too() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(make_settings(Path("unused")), stream)
    try:
        with log_context(task_id="task_1", key_id="key_1"):
            logging.getLogger("reelgate.test").warning("hello")
        logging.getLogger("reelgate.test").warning("bye", extra={"task_id": "task_2"})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    first, second = stream.getvalue().splitlines()
    assert first.endswith("WARNING reelgate.test: hello task_id=task_1 key_id=key_1")
    assert second.endswith("WARNING reelgate.test: bye task_id=task_2")


def test_redact_masks_anything_shaped_like_a_key() -> None:
    assert redact("Authorization: sk-0123456789abcdef0123") == "Authorization: sk-***"
    assert redact("hint sk-01…cdef stays") == "hint sk-01…cdef stays"
