"""A fake of Volcengine Ark's content generation tasks (Seedance), written from
https://www.volcengine.com/docs/82379/1520757 (create) and https://www.volcengine.com/docs/82379/1521309 (get).

    POST /api/v3/contents/generations/tasks        {"model", "content": [{"type": "text", ...}, image_url?]}
         -> {"id": "cgt-..."}
    GET  /api/v3/contents/generations/tasks/{id}   -> {"id", "model", "status", "content": {"video_url"}?, "error"?}

The key is a Bearer token (a wrong one: 401 `AuthenticationError`). A script whose outcome is "failed"
ends the task failed with `OutputVideoSensitiveContentDetected`. Result links point at `localhost`
(another origin, like Ark's TOS bucket) and must get no key.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.relay.fakes import FakeUpstream, Job

SENSITIVE = "The request failed because the output video may contain sensitive information."
_STATUS = {"queued": "queued", "in_progress": "running", "completed": "succeeded", "failed": "failed"}


class ArkUpstream(FakeUpstream):
    def routes(self) -> list[Route]:
        return [
            Route("/api/v3/contents/generations/tasks", self.create, methods=["POST"]),
            Route("/api/v3/contents/generations/tasks/{id}", self.task, methods=["GET"]),
            Route("/tos/{id}.mp4", self.download, methods=["GET"]),
        ]

    def bad_key(self, auth: str | None) -> Response:
        error = {"code": "AuthenticationError", "message": "The API key in the request is missing or invalid."}
        return JSONResponse({"error": error}, status_code=401)

    async def create(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        self.counts.create_bodies.append(await request.json())
        return JSONResponse({"id": self.new_job("cgt-").id})

    async def task(self, request: Request) -> Response:
        job = self.polled(
            request,
            request.path_params["id"],
            missing=JSONResponse({"error": {"code": "NotFound", "message": "task not found"}}, status_code=404),
        )
        if not isinstance(job, Job):
            return job
        status, _ = job.advance()
        body: dict[str, Any] = {"id": job.id, "model": "doubao-seedance", "status": _STATUS.get(status, status)}
        if status == "completed":
            body["content"] = {"video_url": f"http://localhost:{request.url.port}/tos/{job.id}.mp4?X-Tos-Expires=1"}
        elif status == "failed":
            body["error"] = {"code": "OutputVideoSensitiveContentDetected", "message": SENSITIVE}
        return JSONResponse(body)

    async def download(self, request: Request) -> Response:
        self.counts.authorizations.append(request.headers.get("authorization") or "(none on TOS)")
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"message": "Not found."}, status_code=404)
        return self.file("video.mp4", job)
