"""A fake of fal's queue, written from https://fal.ai/docs/documentation/model-apis/inference/queue and
https://fal.ai/docs/api-reference/inference-api (submit, status, result).

    POST /{owner}/{app}/{path...}                the model's input -> {"request_id", "status": "IN_QUEUE", ...}
    GET  /{owner}/{app}/requests/{id}/status     202 IN_QUEUE | IN_PROGRESS, 200 COMPLETED
    GET  /{owner}/{app}/requests/{id}            200 {"video": {"url"}}, or 422 with the model's error
    POST /storage/upload/initiate?storage_type=fal-cdn-v3   {"file_name", "content_type"} -> {"upload_url",
                                                 "file_url"}, as fal's clients upload a file to its CDN
                                                 (https://fal.ai/docs/documentation/model-apis/fal-cdn)
    PUT  upload_url                              the bytes (a signed URL on another host: no key)

The key is `Authorization: Key KEY` (a wrong one: 401 with `detail`). A script whose outcome is "failed"
completes the request with a content-policy error as its result. The video link points at `localhost`
(another origin, like fal's CDN) and must get no key; so does the signed upload URL. An input naming a
file (`image_url`) must name one uploaded here, else the app answers 422 as fal's do for a file it cannot
download.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.relay.fakes import FakeUpstream, Job

REFUSED = "The content could not be processed because it contained material flagged by a content checker."
_STATUS = {"queued": "IN_QUEUE", "in_progress": "IN_PROGRESS", "completed": "COMPLETED", "failed": "COMPLETED"}


class FalUpstream(FakeUpstream):
    scheme = "Key"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Uploaded files by their CDN URL.
        self.uploads: dict[str, bytes] = {}
        super().__init__(*args, **kwargs)

    def routes(self) -> list[Route]:
        return [
            Route("/storage/upload/initiate", self.initiate, methods=["POST"]),
            Route("/uploads/{name}", self.put, methods=["PUT"]),
            Route("/cdn/{id}.mp4", self.download, methods=["GET"]),
            Route("/{owner}/{app}/requests/{id}/status", self.status, methods=["GET"]),
            Route("/{owner}/{app}/requests/{id}", self.result, methods=["GET"]),
            Route("/{model:path}", self.submit, methods=["POST"]),
        ]

    def bad_key(self, auth: str | None) -> Response:
        return JSONResponse({"detail": "Authentication is required to access this application."}, status_code=401)

    async def submit(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        model = request.path_params["model"]
        given = await request.json()
        self.counts.create_bodies.append({"model": model, "input": given})
        if "image_url" in given and given["image_url"] not in self.uploads:
            return JSONResponse({"detail": [{"loc": ["body", "image_url"], "msg": "File not found"}]}, status_code=422)
        job = self.new_job("req-")
        owner, app = model.split("/")[:2]
        base = f"http://127.0.0.1:{request.url.port}/{owner}/{app}/requests/{job.id}"
        return JSONResponse(
            {"request_id": job.id, "status": "IN_QUEUE", "status_url": f"{base}/status", "response_url": base}
        )

    async def status(self, request: Request) -> Response:
        job = self.polled(
            request, request.path_params["id"], missing=JSONResponse({"detail": "Request not found"}, status_code=404)
        )
        if not isinstance(job, Job):
            return job
        status, _ = job.advance()
        code = _STATUS.get(status, status)
        return JSONResponse({"status": code, "request_id": job.id}, status_code=200 if code == "COMPLETED" else 202)

    async def result(self, request: Request) -> Response:
        denied = self.denied(request)
        if denied is not None:
            return denied
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        status, _ = job.advance()
        if status == "failed":
            return JSONResponse({"detail": REFUSED}, status_code=422)
        url = f"http://localhost:{request.url.port}/cdn/{job.id}.mp4"
        return JSONResponse({"video": {"url": url, "content_type": "video/mp4"}, "seed": 7})

    async def initiate(self, request: Request) -> Response:
        denied = self.denied(request)
        if denied is not None:
            return denied
        if request.query_params.get("storage_type") != "fal-cdn-v3":
            return JSONResponse({"detail": "Unknown storage type"}, status_code=400)
        asked = await request.json()
        name = f"{len(self.uploads) + 1:04d}-{asked['file_name']}"
        # Both on `localhost`: the signed upload URL and the CDN are other hosts than the API.
        port = request.url.port
        upload = f"http://localhost:{port}/uploads/{name}?signature=x"
        self.uploads[f"http://localhost:{port}/files/{name}"] = b""
        return JSONResponse({"upload_url": upload, "file_url": f"http://localhost:{port}/files/{name}"})

    async def put(self, request: Request) -> Response:
        file_url = f"http://localhost:{request.url.port}/files/{request.path_params['name']}"
        if file_url not in self.uploads or request.query_params.get("signature") != "x":
            return Response("AccessDenied", status_code=403)
        self.uploads[file_url] = await request.body()
        return Response(status_code=200)

    async def download(self, request: Request) -> Response:
        self.counts.authorizations.append(request.headers.get("authorization") or "(none on the CDN)")
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        return self.file("video.mp4", job)
