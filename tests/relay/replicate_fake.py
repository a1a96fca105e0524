"""A fake of Replicate's predictions API, written from https://replicate.com/docs/reference/http
(models.predictions.create, predictions.get).

    POST /v1/models/{owner}/{name}/predictions   {"input": {...}} -> {"id", "status": "starting", "urls"}
    GET  /v1/predictions/{id}                    -> {"id", "status", "output"?, "error"?}

The key is a Bearer token (a wrong one: 401 with `detail`). A script whose outcome is "failed" fails the
prediction with `error` (by default the safety checker's words). The output link points at `localhost`
(another origin, like replicate.delivery) and must get no key.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.relay.fakes import FakeUpstream, Job

NSFW = "NSFW content detected. Try running it again, or try a different prompt."
_STATUS = {"queued": "starting", "in_progress": "processing", "completed": "succeeded", "failed": "failed"}


class ReplicateUpstream(FakeUpstream):
    #: A failed prediction's `error`.
    error: object = NSFW

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models/{owner}/{name}/predictions", self.create, methods=["POST"]),
            Route("/v1/predictions/{id}", self.prediction, methods=["GET"]),
            Route("/delivery/{id}.mp4", self.download, methods=["GET"]),
        ]

    def bad_key(self, auth: str | None) -> Response:
        return JSONResponse(
            {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401},
            status_code=401,
        )

    async def create(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        if request.headers.get("prefer"):
            return JSONResponse({"detail": "this fake only answers asynchronously"}, status_code=400)
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        self.counts.create_bodies.append({"model": model, **await request.json()})
        job = self.new_job("p")
        return JSONResponse(
            {"id": job.id, "status": "starting", "urls": {"get": f"/v1/predictions/{job.id}"}}, status_code=201
        )

    async def prediction(self, request: Request) -> Response:
        job = self.polled(
            request, request.path_params["id"], missing=JSONResponse({"detail": "Not found."}, status_code=404)
        )
        if not isinstance(job, Job):
            return job
        status, _ = job.advance()
        body: dict[str, Any] = {"id": job.id, "status": _STATUS.get(status, status), "output": None, "error": None}
        if status == "completed":
            body["output"] = f"http://localhost:{request.url.port}/delivery/{job.id}.mp4"
        elif status == "failed":
            body["error"] = self.error
        return JSONResponse(body)

    async def download(self, request: Request) -> Response:
        self.counts.authorizations.append(request.headers.get("authorization") or "(none on delivery)")
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        return self.file("video.mp4", job)
