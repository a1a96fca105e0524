"""A fake of Kling's video API, written from
https://app.klingai.com/global/dev/document-api/apiReference/model/textToVideo (and imageToVideo).

    POST /v1/videos/text2video | image2video      -> {"code": 0, "data": {"task_id", "task_status": "submitted"}}
    GET  /v1/videos/{endpoint}/{task_id}          -> {"code": 0, "data": {"task_status": ..., "task_result":
                                                       {"videos": [{"id", "url", "duration"}]}}}

Every API request must carry `Authorization: Bearer <JWT>`, HS256-signed with the secret key, `iss` the
access key, within `nbf`..`exp`; anything else is Kling's 401 code 1000. A script whose outcome is
"failed" has its create refused by the content policy (HTTP 400, code 1301), or, where `task_failure`
is set, its task accepted and then failed with that `task_status_msg` (and `task_failure_code` as the
answer's code, 0 as Kling's query answers otherwise give). The result links point at
`localhost` (another origin than the API's 127.0.0.1, like Kling's CDN) and must get no credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.relay.fakes import FakeUpstream, Job

ACCESS = "AK-kling-test-0123456789"
SECRET = "SK-kling-test-abcdefghij"
REFUSED = "Trigger the content security policy of the platform"


def valid_jwt(token: str, access: str = ACCESS, secret: str = SECRET) -> bool:
    try:
        header, claims, signature = token.split(".")
        expected = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        head = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except ValueError:
        return False
    now = time.time()
    return (
        hmac.compare_digest(expected, given)
        and head.get("alg") == "HS256"
        and payload.get("iss") == access
        and payload.get("nbf", now + 1) <= now < payload.get("exp", 0)
    )


class KlingUpstream(FakeUpstream):
    #: A failed script's task is accepted and fails later with this message (None: refused at create).
    task_failure: str | None = None
    task_failure_code: int = 0

    def routes(self) -> list[Route]:
        return [
            Route("/v1/videos/{endpoint}", self.create, methods=["POST"]),
            Route("/v1/videos/{endpoint}/{id}", self.query, methods=["GET"]),
            Route("/cdn/{id}.mp4", self.download, methods=["GET"]),
        ]

    def denied(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        self.counts.authorizations.append(auth)
        if auth.startswith("Bearer ") and valid_jwt(auth.removeprefix("Bearer ")):
            return None
        return JSONResponse({"code": 1000, "message": "Authentication failed", "request_id": "r"}, status_code=401)

    async def create(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        if endpoint not in ("text2video", "image2video"):
            return JSONResponse({"code": 1200, "message": "Not found"}, status_code=404)
        refused = self.refusal(request)
        if refused is not None:
            return refused
        body = await request.json()
        self.counts.create_bodies.append({"endpoint": endpoint, **body})
        if self.script.outcome == "failed" and self.task_failure is None:
            return JSONResponse({"code": 1301, "message": REFUSED, "request_id": "r"}, status_code=400)
        job = self.new_job("kt")
        data = {"task_id": job.id, "task_status": "submitted", "created_at": 0, "updated_at": 0}
        return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": "r", "data": data})

    async def query(self, request: Request) -> Response:
        job = self.polled(
            request,
            request.path_params["id"],
            missing=JSONResponse({"code": 1203, "message": "Task not found"}, status_code=404),
        )
        if not isinstance(job, Job):
            return job
        status, _ = job.advance()
        data: dict[str, Any] = {"task_id": job.id, "created_at": 0, "updated_at": 0}
        data["task_status"] = {"queued": "submitted", "in_progress": "processing", "completed": "succeed"}.get(
            status, status
        )
        if status == "completed":
            url = f"http://localhost:{request.url.port}/cdn/{job.id}.mp4"
            data["task_result"] = {"videos": [{"id": "v1", "url": url, "duration": "5"}]}
        if status == "failed":
            data["task_status_msg"] = self.task_failure
            return JSONResponse({"code": self.task_failure_code, "message": "", "request_id": "r", "data": data})
        return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": "r", "data": data})

    async def download(self, request: Request) -> Response:
        self.counts.authorizations.append(request.headers.get("authorization") or "(none on the CDN)")
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"message": "Not found."}, status_code=404)
        return self.file("video.mp4", job)
