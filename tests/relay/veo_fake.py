"""A fake of Google's Veo on the Gemini API, written from https://ai.google.dev/gemini-api/docs/video.

    POST /v1beta/models/{model}:predictLongRunning       -> {"name": "models/{model}/operations/{id}"}
    GET  /v1beta/models/{model}/operations/{id}          -> {"name", "done", "response": {"generateVideoResponse":
                                                             {"generatedSamples": [{"video": {"uri": ...}}]}}}
    GET  /v1beta/files/{id}:download?alt=media           -> the MP4 (the key is required here too)

Every request must carry `x-goog-api-key`; a wrong one is Google's 400 `API_KEY_INVALID`. A video the
safety filters withhold ends `done` with `raiMediaFilteredCount` and `raiMediaFilteredReasons`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.relay.fakes import FakeUpstream, Job

FILTERED = "The video was withheld: it may violate our policies on violent content (support code 17301594)."


class VeoUpstream(FakeUpstream):
    def routes(self) -> list[Route]:
        return [
            Route("/v1beta/models/{action}", self.create, methods=["POST"]),
            Route("/v1beta/models/{model}/operations/{id}", self.operation, methods=["GET"]),
            Route("/v1beta/files/{file}", self.download, methods=["GET"]),
        ]

    def denied(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key")
        self.counts.authorizations.append(key)
        if key == self.key:
            return None
        error = {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
        }
        return JSONResponse({"error": error}, status_code=400)

    async def create(self, request: Request) -> Response:
        model, _, method = request.path_params["action"].partition(":")
        if method != "predictLongRunning":
            return JSONResponse({"error": {"code": 404, "message": "Not found."}}, status_code=404)
        refused = self.refusal(request)
        if refused is not None:
            return refused
        body = await request.json()
        self.counts.create_bodies.append({"model": model, **body})
        job = self.new_job("op")
        return JSONResponse({"name": f"models/{model}/operations/{job.id}"})

    async def operation(self, request: Request) -> Response:
        job = self.polled(
            request,
            request.path_params["id"],
            missing=JSONResponse({"error": {"code": 404, "message": "Operation not found."}}, status_code=404),
        )
        if not isinstance(job, Job):
            return job
        await asyncio.sleep(0.005)
        name = f"models/{request.path_params['model']}/operations/{job.id}"
        return JSONResponse(self._operation(job, name, str(request.base_url)))

    def _operation(self, job: Job, name: str, base: str) -> dict[str, Any]:
        status, _ = job.advance()
        if status in ("queued", "in_progress"):
            return {"name": name, "done": False}
        if status == "failed":
            filtered = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [FILTERED]}
            return {"name": name, "done": True, "response": {"generateVideoResponse": filtered}}
        uri = f"{base}v1beta/files/{job.id}:download?alt=media"
        samples = {"generatedSamples": [{"video": {"uri": uri}}]}
        answer = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"}
        return {"name": name, "done": True, "response": {**answer, "generateVideoResponse": samples}}

    async def download(self, request: Request) -> Response:
        denied = self.denied(request)
        if denied is not None:
            return denied
        file, _, method = request.path_params["file"].partition(":")
        job = self.jobs.get(file)
        if job is None or method != "download" or request.query_params.get("alt") != "media":
            return JSONResponse({"error": {"code": 404, "message": "File not found."}}, status_code=404)
        return self.file("video.mp4", job)
