"""Fake upstream providers, one per flavour, run as real HTTP servers (see `servers.py`).

- `VideosUpstream`: OpenAI's Videos API (`POST /v1/videos`, `POST /v1/videos/extensions`, `GET /v1/videos/{id}`,
  `/content`).
- `SeedChatUpstream`: the seed provider's chat stream (markdown, 进度 figures, `/source/{id}` JSON).
- `Sora2apiUpstream`: sora2api's chat stream (progress in `reasoning_content`, `<video src=...>`).

Each follows a `Script` (what polls or stream steps report, which answers fail and how) and counts
what it sees (`Counters`): creates asked and accepted, polls, downloads, jobs in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

KEY = "sk-upstream-test-0123456789abcdef"
#: Headers that carry a credential (a Bearer token or JWT, `Key KEY`, Google's key); none may reach another host.
CREDENTIALS = ("authorization", "x-goog-api-key", "x-api-key", "proxy-authorization")

Outcome = Literal["completed", "failed", "never"]


@dataclass
class Fault:
    """One bad answer: an HTTP error, a body that is not JSON, or a connection dropped mid-answer."""

    status: int | None = None
    retry_after: str | None = None
    malformed: bool = False
    drop: bool = False
    message: str = "The upstream is overloaded."


@dataclass
class Script:
    #: What successive answers about the job report (0 = still queued); then the outcome.
    progress: tuple[int, ...] = (0, 20, 45, 70, 90)
    outcome: Outcome = "completed"
    error_code: str = "content_policy_violation"
    error_message: str = "Your prompt was flagged by the upstream's safety system."
    #: Answers to create requests, one per request, before one is accepted.
    create_faults: list[Fault] = field(default_factory=list)
    #: Answers given instead of the job, by poll (or stream step) number, counted from 0.
    poll_faults: dict[int, Fault] = field(default_factory=dict)
    #: What the result link answers: 200, or e.g. 404 for a dead link.
    video_status: int = 200
    #: Sent as `openai-poll-after-ms` on polls.
    poll_after_ms: int | None = None
    #: Status words: OpenAI's, or common synonyms ("pending", "processing", "succeeded").
    synonyms: bool = False
    #: Seconds between stream steps (chat flavours).
    step_seconds: float = 0.03
    #: Refuse every create with this status (failover and breaker tests); None accepts.
    refuse: int | None = None


@dataclass
class Counters:
    creates: int = 0  #: create requests received, refused or not
    create_times: list[float] = field(default_factory=list)
    accepted: int = 0  #: jobs created (each one would be charged upstream)
    polls: int = 0
    polls_in_flight: int = 0
    max_polls_in_flight: int = 0
    poll_times: list[float] = field(default_factory=list)
    downloads: int = 0
    active: int = 0  #: accepted jobs whose video was not downloaded yet
    max_active: int = 0
    requests: int = 0  #: every request, of any kind
    create_bodies: list[Any] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    #: Requests to the fake's other host (`localhost`: result links, signed uploads), and the credential
    #: headers they carried (none, unless the provider needs its key there).
    elsewhere: int = 0
    credentials_elsewhere: list[str] = field(default_factory=list)


@dataclass
class Job:
    id: str
    script: Script
    step: int = 0
    polls: int = 0
    downloaded: bool = False
    #: Whether the stream has begun its progress line.
    generating: bool = False

    def advance(self) -> tuple[str, int]:
        """The next (status, progress) the job reports."""
        step, self.step = self.step, self.step + 1
        progress = self.script.progress
        if step < len(progress):
            return ("queued" if progress[step] == 0 else "in_progress"), progress[step]
        if self.script.outcome == "never":
            return "in_progress", progress[-1] if progress else 0
        return self.script.outcome, 100 if self.script.outcome == "completed" else (progress[-1] if progress else 0)


SYNONYMS = {"queued": "pending", "in_progress": "processing", "completed": "succeeded", "failed": "error"}


class Dropped(Response):
    """Starts a JSON answer and closes the connection half-way, as a crashing proxy does."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"200")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"status": "in_pro', "more_body": True})
        raise ConnectionAbortedError("the fake upstream drops this connection")


def fault_response(fault: Fault) -> Response:
    if fault.drop:
        return Dropped()
    if fault.malformed:
        return Response('{"status": "in_progress", "progress": 4', media_type="application/json")
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    body = {"error": {"message": fault.message, "type": "server_error", "code": None}}
    return JSONResponse(body, status_code=fault.status or 500, headers=headers)


class FakeUpstream:
    """What every flavour shares: a script, counters, auth, and the files it serves."""

    #: How the upstream takes its key: `Authorization: {scheme} {key}`.
    scheme = "Bearer"

    def __init__(self, media: Path, script: Script | None = None, key: str = KEY) -> None:
        self.media = media
        self.script = script or Script()
        self.key = key
        self.counts = Counters()
        self._create_faults = list(self.script.create_faults)
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self.app = Starlette(routes=self.routes())

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def refusal(self, request: Request) -> Response | None:
        """An answer refusing this create (bad key, scripted fault or refusal), or None to accept it."""
        self.counts.creates += 1
        self.counts.create_times.append(time.monotonic())
        denied = self.denied(request)
        if denied is not None:
            return denied
        if self._create_faults:
            return fault_response(self._create_faults.pop(0))
        if self.script.refuse is not None:
            return JSONResponse({"error": {"message": "No capacity left."}}, status_code=self.script.refuse)
        return None

    def denied(self, request: Request) -> Response | None:
        """The answer to a request without the right key (`bad_key`), or None."""
        auth = request.headers.get("authorization")
        self.counts.authorizations.append(auth)
        return None if auth == f"{self.scheme} {self.key}" else self.bad_key(auth)

    def bad_key(self, auth: str | None) -> Response:
        """The upstream's answer to a wrong or missing key; here OpenAI's."""
        # Quoting the key back, as some upstreams do: reelgate must never show it to its users.
        message = f"Incorrect API key provided: {(auth or '').removeprefix('Bearer ')}"
        return JSONResponse({"error": {"message": message, "code": "invalid_api_key"}}, status_code=401)

    def new_job(self, prefix: str) -> Job:
        job = Job(f"{prefix}{next(self._ids):04d}", self.script)
        self.jobs[job.id] = job
        self.counts.accepted += 1
        self.counts.active += 1
        self.counts.max_active = max(self.counts.max_active, self.counts.active)
        return job

    def polled(self, request: Request, job_id: str, missing: Response) -> Job | Response:
        """The job a status request reads, counted; else the answer instead: a bad key, `missing` for an
        unknown job, or the scripted fault of this poll."""
        denied = self.denied(request)
        if denied is not None:
            return denied
        job = self.jobs.get(job_id)
        if job is None:
            return missing
        self.counts.polls += 1
        self.counts.poll_times.append(time.monotonic())
        number, job.polls = job.polls, job.polls + 1
        fault = self.script.poll_faults.get(number)
        return job if fault is None else fault_response(fault)

    def word(self, status: str) -> str:
        return SYNONYMS.get(status, status) if self.script.synonyms else status

    def file(self, name: str, job: Job | None = None) -> Response:
        if name.endswith(".mp4"):
            if self.script.video_status != 200:
                return JSONResponse({"error": {"message": "Not found."}}, status_code=self.script.video_status)
            self.counts.downloads += 1
            if job is not None and not job.downloaded:
                job.downloaded = True
                self.counts.active -= 1
            return Response((self.media / "video.mp4").read_bytes(), media_type="video/mp4")
        return Response((self.media / "thumbnail.webp").read_bytes(), media_type="image/webp")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.counts.requests += 1
            self._note_elsewhere(scope)
        await self.app(scope, receive, send)

    def _note_elsewhere(self, scope: Scope) -> None:
        headers = {name.decode().lower(): value for name, value in scope["headers"]}
        if headers.get("host", b"").startswith(b"localhost"):
            self.counts.elsewhere += 1
            self.counts.credentials_elsewhere += [name for name in CREDENTIALS if name in headers]


class VideosUpstream(FakeUpstream):
    def routes(self) -> list[Route]:
        return [
            Route("/v1/videos", self.create, methods=["POST"]),
            Route("/v1/videos/extensions", self.extend, methods=["POST"]),
            Route("/v1/videos/{id}", self.retrieve, methods=["GET"]),
            Route("/v1/videos/{id}/content", self.content, methods=["GET"]),
        ]

    async def create(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await request.form()
            body: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
            body["input_reference"] = "input_reference" in form
            await form.close()
        else:
            body = await request.json()
        self.counts.create_bodies.append(body)
        job = self.new_job("video_")
        return JSONResponse({"id": job.id, "object": "video", "status": self.word("queued"), "progress": 0})

    async def extend(self, request: Request) -> Response:
        """`client.videos.extend`: a completed video of this upstream continued (JSON `video: {"id"}`)."""
        refused = self.refusal(request)
        if refused is not None:
            return refused
        body = await request.json()
        source = self.jobs.get(str((body.get("video") or {}).get("id")))
        if source is None or not source.downloaded:
            return JSONResponse({"error": {"message": "No such completed video.", "param": "video"}}, status_code=400)
        self.counts.create_bodies.append(body)
        job = self.new_job("video_")
        return JSONResponse({"id": job.id, "object": "video", "status": self.word("queued"), "progress": 0})

    async def retrieve(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"error": {"message": "No such video."}}, status_code=404)
        counts = self.counts
        counts.polls += 1
        counts.poll_times.append(time.monotonic())
        counts.polls_in_flight += 1
        counts.max_polls_in_flight = max(counts.max_polls_in_flight, counts.polls_in_flight)
        try:
            await asyncio.sleep(0.005)  # long enough for overlapping polls to be seen
            return self._poll_answer(job)
        finally:
            counts.polls_in_flight -= 1

    def _poll_answer(self, job: Job) -> Response:
        number, job.polls = job.polls, job.polls + 1
        fault = self.script.poll_faults.get(number)
        if fault is not None:
            return fault_response(fault)
        status, progress = job.advance()
        body: dict[str, Any] = {"id": job.id, "object": "video", "status": self.word(status), "progress": progress}
        if status == "failed":
            body["error"] = {"code": self.script.error_code, "message": self.script.error_message}
        headers = {"openai-poll-after-ms": str(self.script.poll_after_ms)} if self.script.poll_after_ms else {}
        return JSONResponse(body, headers=headers)

    async def content(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"error": {"message": "No such video."}}, status_code=404)
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return JSONResponse({"error": {"message": "Unauthorized."}}, status_code=401)
        variant = request.query_params.get("variant", "video")
        return self.file("thumbnail.webp" if variant == "thumbnail" else "video.mp4", job)


def chunk(content: str = "", reasoning: str | None = None, **extra: Any) -> str:
    delta: dict[str, Any] = {"content": content}
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    delta.update(extra)
    body = {"object": "chat.completion.chunk", "model": "fake", "choices": [{"index": 0, "delta": delta}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def finish_chunk(reason: str = "stop") -> str:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}
    return f"data: {json.dumps(body)}\n\n"


class ChatUpstream(FakeUpstream):
    """Shared by the chat flavours: a stream of scripted steps, with faults by step."""

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.completions, methods=["POST"]),
            Route("/source/{id}", self.source, methods=["GET"]),
            Route("/files/{job}/{name}", self.files, methods=["GET"]),
        ]

    async def completions(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        self.counts.create_bodies.append(await request.json())
        job = self.new_job("task_fake")
        base = str(request.base_url).rstrip("/")
        return StreamingResponse(self.stream(job, base), media_type="text/event-stream")

    async def stream(self, job: Job, base: str) -> AsyncIterator[str]:
        for piece in self.opening(job, base):
            yield piece
        while True:
            await asyncio.sleep(self.script.step_seconds)
            fault = self.script.poll_faults.get(job.step)
            if fault is not None and fault.drop:
                raise ConnectionAbortedError("the fake upstream drops the stream")
            if fault is not None and fault.malformed:
                yield 'data: {"choices": [{"delta": {"content": "broken\n\n'
            status, progress = job.advance()
            if status in ("queued", "in_progress"):
                yield self.progress(job, progress)
                continue
            for piece in self.ending(job, base, status):
                yield piece
            yield finish_chunk()
            yield "data: [DONE]\n\n"
            return

    async def source(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"error": {"message": "No such task."}}, status_code=404)
        self.counts.polls += 1
        status, progress = job.advance()
        base = str(request.base_url).rstrip("/")
        body: dict[str, Any] = {"id": job.id, "object": "video", "status": status, "progress": progress}
        if status == "completed":
            body["video_url"] = f"{base}/files/{job.id}/video.mp4"
            body["thumbnail_url"] = f"{base}/files/{job.id}/thumbnail.webp"
        if status == "failed":
            body["error"] = {"code": self.script.error_code, "message": self.script.error_message}
        return JSONResponse(body)

    async def files(self, request: Request) -> Response:
        return self.file(request.path_params["name"], self.jobs.get(request.path_params["job"]))

    def opening(self, job: Job, base: str) -> list[str]:
        return []

    def progress(self, job: Job, percent: int) -> str:
        raise NotImplementedError

    def ending(self, job: Job, base: str, status: str) -> list[str]:
        raise NotImplementedError


class SeedChatUpstream(ChatUpstream):
    """The seed provider: the markdown of its document, piece by piece."""

    def opening(self, job: Job, base: str) -> list[str]:
        block = json.dumps({"prompt": "fake", "orientation": "portrait", "duration": 15}, indent=2)
        return [
            chunk(role="assistant"),
            chunk(f"```json\n{block}\n```\n\n"),
            chunk(
                f"> ID: `{job.id}`  \n> [数据预览]({base}/web/{job.id}) | [原始数据]({base}/source/{job.id})  \n"
                "> 排队中."
            ),
        ]

    def progress(self, job: Job, percent: int) -> str:
        if percent == 0:
            return chunk(".")
        opening = "" if job.generating else " 生成中.\n\n> 🏃 进度 "
        job.generating = True
        return chunk(f"{opening}{percent}..")

    def ending(self, job: Job, base: str, status: str) -> list[str]:
        if status == "failed":
            return [chunk(f"\n\n> 生成失败 ❌ {self.script.error_message}")]
        files = f"{base}/files/{job.id}"
        return [
            chunk(f"\n\n> 生成完成 ✅  \n> sid: `s_{job.id}`\n\n"),
            chunk(f"![{files}/thumbnail.webp]({files}/thumbnail.webp)\n[在线播放▶️]({files}/video.mp4)"),
        ]


class Sora2apiUpstream(ChatUpstream):
    """sora2api: progress in `reasoning_content`, the result as an HTML `<video>` block."""

    def opening(self, job: Job, base: str) -> list[str]:
        return [chunk(reasoning="**Generation Process Begins**\n\nInitializing generation request...\n")]

    def progress(self, job: Job, percent: int) -> str:
        return chunk(reasoning=f"**Video Generation Progress**: {percent}% (processing)\n")

    def ending(self, job: Job, base: str, status: str) -> list[str]:
        if status == "failed":
            body = {"error": {"message": self.script.error_message, "type": "server_error"}}
            return [f"data: {json.dumps(body)}\n\n"]
        url = f"{base}/files/{job.id}/video.mp4"
        html = f"```html\n<video src='{url}' controls></video>\n```"
        return [chunk(html, output=[{"url": url, "type": "video", "task_id": f"s_{job.id}"}])]
