"""The `veo` protocol: Google's Veo on the Gemini API (https://ai.google.dev/gemini-api/docs/video).

    POST {base}/models/{model}:predictLongRunning     create: {"instances": [...], "parameters": {...}}
    GET  {base}/{operation name}                      poll: {"name", "done", "response" | "error"}
    GET  the sample's `video.uri`                     the MP4, fetched with the key (Veo requires it)

The key goes in `x-goog-api-key` (auth.py), base URL `https://generativelanguage.googleapis.com/v1beta`.
Veo makes 4, 6 or 8 s (plans refuse other catalog durations at start-up), 16:9 or 9:16, 720p or 1080p,
with sound on Veo 3. A video its safety filters withhold is `content_policy_violation` with their reasons.

Veo 3.1 extends a video it made (https://ai.google.dev/gemini-api/docs/video#extending_veo_videos): the
same create with the earlier sample's file as `video` (`{"uri": ...}`) adds 7 s at 720p and answers one
video, the input followed by the new seconds. `chaining.py` uses it for extensions and long videos. Only
Veo 3.1 models extend: the Gemini API lists video extension among Veo 3.1's features, not Veo 3's or 2's
(same page, and Vertex AI's list of models that extend, all `veo-3.1-*` but two Veo 2 previews the Gemini
API does not serve: https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/video/extend-a-veo-video),
so an entry that would extend with another model is refused at start-up, an extension at admission.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from reelgate.backends.base import Orientation
from reelgate.backends.relay.documents import JobDocument, JobPhase
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip, message_of
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome
from reelgate.backends.relay.makes import Makes
from reelgate.backends.relay.task_api import TaskApi, base64_of

#: The durations one Veo call makes.
DURATIONS = (4, 6, 8)
#: What one extension call adds to a video Veo made.
EXTENSION_SECONDS = 7
MODERATED = "content_policy_violation"


class Veo(TaskApi):
    name = "Veo"
    noun = "operation"
    can_make = Makes(tiers=("720p", "1080p"))

    def makes(self, model: str, parameters: Mapping[str, Any]) -> Makes:
        return replace(self.can_make, extends=extends(model))

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
        url = exchange.upstream.url(f"models/{quote(job.model, safe='')}:predictLongRunning")
        body, _ = await exchange.json("POST", url, json=await payload(job))
        return self.job_id(body.get("name") if isinstance(body, dict) else None, "operation name")

    def status_path(self, job_id: str) -> str:
        return quote(job_id, safe="/")  # the operation's name is its path

    def read(self, body: object) -> JobDocument:
        return read_operation(body)

    def video_ref(self, state: JobState, outcome: Outcome) -> str | None:
        """What an extension names a finished video by: the sample's file URI (kept two days by Google)."""
        return outcome.video_urls[0] if outcome.video_urls else None


async def payload(job: JobRequest) -> dict[str, Any]:
    """The request body: prompt (and first frame), then Veo's parameters, the catalog's own last."""
    if job.extend is not None:
        return extension_payload(job)
    instance: dict[str, Any] = {"prompt": job.prompt}
    if job.image is not None:
        instance["image"] = {"bytesBase64Encoded": await base64_of(job.image), "mimeType": "image/png"}
    parameters = {
        "aspectRatio": "9:16" if job.orientation is Orientation.PORTRAIT else "16:9",
        "resolution": resolution(job.size),
        "durationSeconds": job.seconds,
        **job.parameters,
    }
    return {"instances": [instance], "parameters": parameters}


def extension_payload(job: JobRequest) -> dict[str, Any]:
    """An extension of the video Veo made at `job.extend`: 7 more seconds, at the only resolution Veo extends."""
    instance = {"prompt": job.prompt, "video": {"uri": job.extend}}
    aspect = "9:16" if job.orientation is Orientation.PORTRAIT else "16:9"
    return {"instances": [instance], "parameters": {"aspectRatio": aspect, **job.parameters, "resolution": "720p"}}


def extends(model: str) -> bool:
    """Whether Veo's extension call takes videos of `model`: Veo 3.1's (`veo-3.1-generate-preview`,
    `veo-3.1-fast-generate-preview`, ...), `models/` prefix or not."""
    return model.removeprefix("models/").startswith("veo-3.1-")


def resolution(size: str) -> str:
    """`"720p"`/`"1080p"` as the catalog maps it (`sizes`), else from the size's shorter side."""
    if size.endswith("p"):
        return size
    width, _, height = size.partition("x")
    return "1080p" if min(int(width), int(height)) >= 1080 else "720p"


def read_operation(body: object) -> JobDocument:
    """A long-running operation as a job document; retryable UpstreamError when it is no operation."""
    if not isinstance(body, dict) or "name" not in body:
        raise UpstreamError("Veo's operation has no name", retryable=True)
    if not body.get("done"):
        return JobDocument(JobPhase.RUNNING)
    if "error" in body:
        return JobDocument(JobPhase.FAILED, error_code="upstream_failed", error_message=_message(body["error"]))
    answer = (body.get("response") or {}).get("generateVideoResponse") or {}
    videos = tuple(
        sample["video"]["uri"]
        for sample in answer.get("generatedSamples") or ()
        if isinstance(sample, dict) and isinstance(sample.get("video"), dict) and sample["video"].get("uri")
    )
    if videos:
        return JobDocument(JobPhase.COMPLETED, progress=100, video_urls=videos)
    reasons = answer.get("raiMediaFilteredReasons") or []
    if answer.get("raiMediaFilteredCount") or reasons:
        message = " ".join(str(reason) for reason in reasons) or "Veo's safety filters withheld this video."
        return JobDocument(JobPhase.FAILED, error_code=MODERATED, error_message=clip(message))
    return JobDocument(JobPhase.FAILED, error_code="upstream_failed", error_message="Veo returned no video.")


def _message(error: object) -> str:
    return clip(message_of(error) or "Veo could not generate this video.")
