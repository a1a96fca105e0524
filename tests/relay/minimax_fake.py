"""A fake of MiniMax's Hailuo video generation, written from
https://platform.minimax.io/docs/api-reference/video-generation-t2v (create, query, file retrieve).

    POST /v1/video_generation                      -> {"task_id", "base_resp": {"status_code": 0, ...}}
    GET  /v1/query/video_generation?task_id=...    -> {"task_id", "status", "file_id"?, "base_resp"}
    GET  /v1/files/retrieve?file_id=...            -> {"file": {"file_id", "download_url"}, "base_resp"}

MiniMax answers errors with HTTP 200 and a `base_resp` code: a wrong key is 1004. A script whose outcome
is "failed" refuses the create as sensitive input (1026). The download link points at `localhost`
(another origin, like MiniMax's storage) and must get no key.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.relay.fakes import FakeUpstream, Job

SENSITIVE = "input new_sensitive"
_STATUS = {"queued": "Queueing", "in_progress": "Processing", "completed": "Success", "failed": "Fail"}
OK = {"status_code": 0, "status_msg": "success"}


class MiniMaxUpstream(FakeUpstream):
    def routes(self) -> list[Route]:
        return [
            Route("/v1/video_generation", self.create, methods=["POST"]),
            Route("/v1/query/video_generation", self.query, methods=["GET"]),
            Route("/v1/files/retrieve", self.retrieve, methods=["GET"]),
            Route("/storage/{id}.mp4", self.download, methods=["GET"]),
        ]

    def bad_key(self, auth: str | None) -> Response:
        return JSONResponse(
            {"base_resp": {"status_code": 1004, "status_msg": "login fail: Please carry the API secret key"}}
        )

    async def create(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        self.counts.create_bodies.append(await request.json())
        if self.script.outcome == "failed":
            return JSONResponse({"task_id": "", "base_resp": {"status_code": 1026, "status_msg": SENSITIVE}})
        return JSONResponse({"task_id": self.new_job("1").id, "base_resp": OK})

    async def query(self, request: Request) -> Response:
        job = self.polled(
            request,
            request.query_params.get("task_id", ""),
            missing=JSONResponse({"base_resp": {"status_code": 2013, "status_msg": "invalid params"}}),
        )
        if not isinstance(job, Job):
            return job
        status, _ = job.advance()
        body: dict[str, Any] = {"task_id": job.id, "status": _STATUS.get(status, status), "base_resp": OK}
        if status == "completed":
            body["file_id"] = f"f{job.id}"
        return JSONResponse(body)

    async def retrieve(self, request: Request) -> Response:
        denied = self.denied(request)
        if denied is not None:
            return denied
        file_id = request.query_params.get("file_id", "")
        url = f"http://localhost:{request.url.port}/storage/{file_id.removeprefix('f')}.mp4"
        return JSONResponse({"file": {"file_id": file_id, "download_url": url}, "base_resp": OK})

    async def download(self, request: Request) -> Response:
        self.counts.authorizations.append(request.headers.get("authorization") or "(none on storage)")
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"message": "Not found."}, status_code=404)
        return self.file("video.mp4", job)
