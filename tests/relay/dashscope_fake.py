"""A fake of Alibaba Cloud Model Studio's Wan video synthesis, written from
https://www.alibabacloud.com/help/en/model-studio/text-to-video-api-reference (and image-to-video).

    POST /api/v1/services/aigc/video-generation/video-synthesis   needs `X-DashScope-Async: enable`
         -> {"request_id", "output": {"task_id", "task_status": "PENDING"}}
    GET  /api/v1/tasks/{task_id}   -> {"request_id", "output": {"task_id", "task_status", "video_url"?}}

The key is a Bearer token (a wrong one: 401 `InvalidApiKey`). A script whose outcome is "failed" ends the
task FAILED with `DataInspectionFailed`, as Model Studio does when the output fails its inspection. Result
links point at `localhost` (another origin, like Model Studio's OSS bucket) and must get no key.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.relay.fakes import FakeUpstream, Job

INSPECTION = "Output data may contain inappropriate content."
_STATUS = {"queued": "PENDING", "in_progress": "RUNNING", "completed": "SUCCEEDED", "failed": "FAILED"}


class DashScopeUpstream(FakeUpstream):
    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/services/aigc/video-generation/video-synthesis", self.create, methods=["POST"]),
            Route("/api/v1/tasks/{id}", self.task, methods=["GET"]),
            Route("/oss/{id}.mp4", self.download, methods=["GET"]),
        ]

    def bad_key(self, auth: str | None) -> Response:
        body = {"request_id": "r", "code": "InvalidApiKey", "message": "Invalid API-key provided."}
        return JSONResponse(body, status_code=401)

    async def create(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        if request.headers.get("x-dashscope-async") != "enable":
            body = {
                "request_id": "r",
                "code": "AccessDenied",
                "message": "current user api does not support synchronous calls.",
            }
            return JSONResponse(body, status_code=403)
        self.counts.create_bodies.append(await request.json())
        job = self.new_job("wan-")
        return JSONResponse({"request_id": "r", "output": {"task_id": job.id, "task_status": "PENDING"}})

    async def task(self, request: Request) -> Response:
        job = self.polled(
            request,
            request.path_params["id"],
            missing=JSONResponse({"request_id": "r", "output": {"task_status": "UNKNOWN"}}),
        )
        if not isinstance(job, Job):
            return job
        status, _ = job.advance()
        output = {"task_id": job.id, "task_status": _STATUS.get(status, status)}
        if status == "completed":
            output["video_url"] = f"http://localhost:{request.url.port}/oss/{job.id}.mp4?Expires=1&Signature=x"
        elif status == "failed":
            output.update(code="DataInspectionFailed", message=INSPECTION)
        return JSONResponse({"request_id": "r", "output": output})

    async def download(self, request: Request) -> Response:
        self.counts.authorizations.append(request.headers.get("authorization") or "(none on OSS)")
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"message": "Not found."}, status_code=404)
        return self.file("video.mp4", job)
