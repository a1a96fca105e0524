"""The `replicate` protocol: predictions of any video model hosted on Replicate
(https://replicate.com/docs/reference/http#models.predictions.create, #predictions.get).

    POST {base}/v1/models/{owner}/{name}/predictions    {"input": {...}}  (no `Prefer: wait`) -> {"id", "status"}
    GET  {base}/v1/predictions/{id}                     status starting | processing | succeeded | failed
                                                        | canceled, `output` (a URL or a list of them), `error`

Base URL `https://api.replicate.com`, the key as a Bearer token, never sent to the output's host. Each
model names its inputs its own way, so the catalog's `parameters` is the input, its strings templates of
`{prompt}`, `{seconds}`, `{ratio}` (`9:16`), `{size}`, `{image}` (the reference image as a data URI):

    parameters = { prompt = "{prompt}", duration = "{seconds}", aspect_ratio = "{ratio}", start_image = "{image}" }

A value that is exactly `{seconds}` is sent as a number; one naming `{image}` is left out when there is no
image. Without `parameters`: prompt, duration, aspect_ratio and (with an image) image.

A failed prediction's `error` is a string (the reference: "if the prediction failed, this will contain a
string representing the error encountered"; an object's `code`/`message` are read too). Replicate's own
failures carry a code `E####` (https://replicate.com/docs/reference/error-codes: E1000 unknown, E1001 out
of memory, E4875 webhook URL empty, E6716 timeout starting the prediction), none of which is a safety
refusal; a model's safety checker has no code of Replicate's, so an error without one is read for the
checker's words ("NSFW content detected", "flagged as sensitive") as a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from reelgate.backends.base import Orientation
from reelgate.backends.relay.documents import JobDocument, JobPhase, phase_of
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip, message_of
from reelgate.backends.relay.jobs import JobRequest
from reelgate.backends.relay.makes import Makes
from reelgate.backends.relay.task_api import TaskApi, data_uri

DEFAULT_INPUT = {"prompt": "{prompt}", "duration": "{seconds}", "aspect_ratio": "{ratio}", "image": "{image}"}
#: Words in a failed prediction's error that mean a safety checker refused the video.
MODERATION_WORDS = ("nsfw", "sensitive", "safety", "flagged", "content policy", "moderation")
#: Replicate's error codes that are not `upstream_failed` (no code of Replicate's is a safety refusal).
ERROR_CODES = {"E6716": "upstream_timeout"}  # the prediction did not start in time
_ERROR_CODE = re.compile(r"\bE\d{4}\b")


class Replicate(TaskApi):
    name = "Replicate"
    noun = "prediction"

    def makes(self, model: str, parameters: Mapping[str, Any]) -> Makes:
        return takes_image(parameters or DEFAULT_INPUT)

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
        url = exchange.upstream.url(f"v1/models/{quote(job.model, safe='/')}/predictions")
        body, _ = await exchange.json("POST", url, json={"input": await inputs(job)})
        return self.job_id(body.get("id") if isinstance(body, dict) else None, "prediction id")

    def status_path(self, job_id: str) -> str:
        return f"v1/predictions/{quote(job_id, safe='')}"

    def read(self, body: object) -> JobDocument:
        return read_prediction(body)


async def inputs(
    job: JobRequest, default: Mapping[str, Any] = DEFAULT_INPUT, image: str | None = None
) -> dict[str, Any]:
    """The model's input: the catalog's templates (or the common names) filled in for this video;
    `{image}` is `image` (the reference image's address), by default a data URI of it."""
    if image is None and job.image is not None:
        image = await data_uri(job.image)
    values = {
        "prompt": job.prompt,
        "seconds": job.seconds,
        "ratio": "9:16" if job.orientation is Orientation.PORTRAIT else "16:9",
        "size": job.size,
        "image": image or "",
    }
    return {
        name: filled
        for name, value in (job.parameters or default).items()
        if (filled := _fill(value, values, image)) is not None
    }


def takes_image(template: Mapping[str, Any]) -> Makes:
    """A model whose input names no `{image}` is sent no image: it makes videos from text only."""
    return Makes(image=any(isinstance(value, str) and "{image}" in value for value in template.values()))


def _fill(value: Any, values: Mapping[str, Any], image: str | None) -> Any:
    if not isinstance(value, str):
        return value
    if "{image}" in value and image is None:
        return None
    if value == "{seconds}":
        return values["seconds"]
    try:
        return value.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise UpstreamError(f"the catalog's input template {value!r} is wrong ({exc!r})", retryable=False) from exc


def read_prediction(body: object) -> JobDocument:
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(status, str) or not status:
        raise UpstreamError("Replicate's prediction has no status", retryable=True)
    phase = phase_of(status)
    if phase is JobPhase.FAILED:
        message = clip(message_of(body.get("error")) or f"Replicate ended the prediction {status}.")
        return JobDocument(phase, error_code=failure_code(body.get("error"), message), error_message=message)
    output = body.get("output")
    urls = [output] if isinstance(output, str) else output if isinstance(output, list) else []
    return JobDocument(phase, video_urls=tuple(u for u in urls if isinstance(u, str) and u.startswith("http")))


def failure_code(error: object, message: str) -> str:
    """reelgate's code for a failed prediction: by Replicate's `E####` code where it gives one, else a
    safety checker's refusal by its words, else `upstream_failed`."""
    given = error.get("code") if isinstance(error, dict) else None
    found = given if isinstance(given, str) else next(iter(_ERROR_CODE.findall(message)), None)
    if found is not None:
        return ERROR_CODES.get(found, "upstream_failed")
    moderated = any(word in message.lower() for word in MODERATION_WORDS)
    return "content_policy_violation" if moderated else "upstream_failed"
