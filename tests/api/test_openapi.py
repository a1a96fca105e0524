"""`/openapi.json` is the contract: what it declares is what the server does, checked by schemathesis."""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request, Response

from reelgate.api.chat import PlainRoute
from tests.api.test_bad_input import _counts, _key
from tests.conftest import SMALL_MODELS, assert_openai_error, live_server, make_settings

ADMIN_TOKEN = "admin-token-for-the-contract-run-0123456789"
CONFIG = Path(__file__).with_name("schemathesis.toml")
TINY = {"portrait": "144x256", "landscape": "256x144", "fps": 8, "seconds": 1}
#: Every model renders a one-second 144x256 video, so accepted requests cost the machine little.
MODELS = {
    **{name: {**model, "seconds": 1} for name, model in SMALL_MODELS.items()},
    "sora-2": {**TINY, "seconds_choices": [1]},
    "sora-2-pro": {**TINY, "seconds_choices": [1], "extra_sizes": []},
}
#: Examples per operation and phase; with the coverage and stateful phases about 1,500 requests a run.
MAX_EXAMPLES = 50


@pytest.fixture
async def document(app_client: httpx.AsyncClient) -> dict[str, Any]:
    response = await app_client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]


async def test_no_answer_is_declared_that_the_server_never_gives(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        assert "422" not in operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            if status >= "400" and path != "/web/{task_id}":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_bodies_read_by_hand_are_declared(document: dict[str, Any]) -> None:
    paths = document["paths"]
    chat = paths["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["required"] == ["model", "messages"]
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    create = paths["/v1/videos"]["post"]["requestBody"]["content"]
    assert set(create) == {"application/json", "multipart/form-data"}
    upload = create["multipart/form-data"]["schema"]["properties"]["input_reference"]
    assert upload["format"] == "binary"
    remix = paths["/v1/videos/{video_id}/remix"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert remix["required"] == ["prompt"]
    content = paths["/v1/videos/{video_id}/content"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"video/mp4", "image/webp", "image/jpeg"}
    assert set(paths["/cdn/{day}/{name}"]["get"]["responses"]["200"]["content"]) == {"video/mp4", "image/webp"}
    assert set(paths["/web/{task_id}"]["get"]["responses"]["404"]["content"]) == {"text/html"}


async def test_security_is_declared_per_operation(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "http", "scheme": "bearer"}
    for path, method, operation in _operations(document):
        public = path.startswith(("/source", "/web", "/cdn", "/healthz", "/readyz"))
        expected = None if public else [{"AdminToken": []}] if path.startswith("/admin") else [{"ApiKey": []}]
        assert operation.get("security") == expected, (method, path)


async def test_405_allows_every_method_of_the_path(app_client: httpx.AsyncClient) -> None:
    for path, allowed in [
        ("/v1/videos", "GET, POST"),
        ("/v1/videos/task_x", "GET, DELETE"),
        ("/v1/videos/task_x/content", "GET, HEAD"),
        ("/v1/chat/completions", "POST"),
    ]:
        response = await app_client.request("PUT", path)
        assert response.status_code == 405
        assert response.headers["allow"] == allowed


async def test_a_reference_object_without_its_url_is_refused(app_client: httpx.AsyncClient) -> None:
    """Found by schemathesis: `{"image_url": null}` made (and charged) a video without its image."""
    headers = {"Authorization": f"Bearer {await _key(app_client)}"}
    before = await _counts(app_client)
    body = {"prompt": "一只猫", "input_reference": {"image_url": None}}
    response = await app_client.post("/v1/videos", json=body, headers=headers)
    assert_openai_error(response, 400, None, "invalid_request_error")
    assert response.json()["error"]["param"] == "input_reference"
    assert await _counts(app_client) == before


async def test_a_refused_upload_is_released(app_client: httpx.AsyncClient) -> None:
    """Found by schemathesis: an unknown form field left the uploaded image's temporary file open."""
    headers = {"Authorization": f"Bearer {await _key(app_client)}"}
    upload = {"input_reference": ("cat.png", b"\x89PNG" + bytes(64), "image/png")}
    response = await app_client.post(
        "/v1/videos", data={"prompt": "一只猫", "colour": "red"}, files=upload, headers=headers
    )
    assert_openai_error(response, 400, "unknown_parameter")
    gc.collect()  # an unclosed upload warns here, and warnings are errors


async def _schemathesis(url: str, authorization: str, cwd: Path, *selection: str) -> tuple[int, str]:
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{url}/openapi.json"),
        *("--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--no-color"),
        *("-H", f"Authorization: Bearer {authorization}", *selection),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd
    )
    output, _ = await process.communicate()
    return await process.wait(), output.decode(errors="replace")


@pytest.mark.schemathesis
@pytest.mark.parametrize("caller", ["client key", "admin token"])
async def test_schemathesis_finds_nothing(tmp_path: Path, caller: str) -> None:
    """Every check (server errors, status codes, content types, response schemas...) passes for every operation."""
    settings = make_settings(tmp_path, models=MODELS, admin_token=ADMIN_TOKEN)
    async with live_server(settings) as server:
        if caller == "client key":
            secret = await server.create_key("100000")
            code, report = await _schemathesis(server.url, secret, tmp_path, "--exclude-path-regex", "^/admin")
        else:
            # A deleted key stays readable by design (soft delete), which `use_after_free` reports.
            admin = ("--include-path-regex", "^/admin", "--exclude-checks", "use_after_free")
            code, report = await _schemathesis(server.url, ADMIN_TOKEN, tmp_path, *admin)
    assert code == 0, report


def test_a_plain_route_refuses_what_only_fastapis_handler_provides() -> None:
    """The chat route is served without FastAPI's request handler, so it may declare nothing that needs one."""

    async def paged(request: Request, page: int = 1) -> Response:
        return Response()

    async def plain(request: Request) -> Response:
        return Response()

    router = APIRouter(route_class=PlainRoute)
    router.add_api_route("/plain", plain, methods=["POST"])
    with pytest.raises(TypeError, match="declares"):
        router.add_api_route("/paged", paged, methods=["POST"])
