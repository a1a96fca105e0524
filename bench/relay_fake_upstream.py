"""A fake OpenAI Videos upstream for `bench/relay_peer.py`: every video is ready a fixed time after its create.

Run as its own process so that its CPU is never counted against a gateway:

    .venv/bin/python bench/relay_fake_upstream.py --port 8100 --media DIR --ready-after 1.0

It serves `DIR/video.mp4` and `DIR/thumbnail.webp` (see `make_media`) for every finished job. Unlike the
test fakes (tests/relay/fakes.py), which advance one step per poll, a job here finishes by the clock: a
gateway that polls more often does not make the video sooner, only learns of it sooner.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY = "sk-bench-upstream-0123456789abcdef"


def make_media(folder: Path, *, seconds: int = 4, width: int = 256, height: int = 144, fps: int = 24) -> Path:
    """A real MP4 (H.264 + AAC stereo) and a WebP still, as an upstream would deliver them."""
    from reelgate.media.encode import Mp4Writer, samples_for_frame, save_thumbnail

    folder.mkdir(parents=True, exist_ok=True)
    samples = 48_000 * seconds
    tone = (0.2 * np.sin(np.linspace(0, 2 * np.pi * 440 * seconds, samples, dtype=np.float32)))[:, None]
    with Mp4Writer(folder / "video.mp4", width, height, fps) as writer:
        for index in range(seconds * fps):
            frame = np.full((height, width, 3), (index * 7 % 255, 90, 160), dtype=np.uint8)
            frame[:, (index * 3) % width] = 255  # something moves, so the encoder has real work
            writer.write(frame, tone.repeat(2, axis=1)[samples_for_frame(index, fps)])
    save_thumbnail(np.full((height, width, 3), (200, 90, 40), dtype=np.uint8), folder / "thumbnail.webp")
    return folder


class Upstream:
    def __init__(self, media: Path, ready_after: float, timeline: bool = False) -> None:
        self.timeline = timeline
        self.video = (media / "video.mp4").read_bytes()
        self.thumbnail = (media / "thumbnail.webp").read_bytes()
        self.ready_after = ready_after
        self.created: dict[str, float] = {}
        self.ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/v1/videos", self.create, methods=["POST"]),
                Route("/v1/videos/{id}", self.retrieve, methods=["GET"]),
                Route("/v1/videos/{id}/content", self.content, methods=["GET"]),
            ]
        )

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse({"error": {"message": "Incorrect API key provided."}}, status_code=401)
        return None

    async def create(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json() if request.headers.get("content-type", "").startswith("application/json") else {}
        video_id = f"video_{next(self.ids):06d}"
        self.created[video_id] = time.monotonic()
        self._note(video_id, "created")
        return JSONResponse(self._video(video_id, body.get("model", "sora-2")))

    def _video(self, video_id: str, model: str = "sora-2") -> dict[str, Any]:
        age = time.monotonic() - self.created[video_id]
        done = age >= self.ready_after
        return {
            "id": video_id,
            "object": "video",
            "model": model,
            "status": "completed" if done else ("queued" if age < 0.1 else "in_progress"),
            "progress": 100 if done else int(100 * age / self.ready_after),
            "created_at": int(time.time()),
            "seconds": "4",
            "size": "256x144",
        }

    async def retrieve(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        video_id = request.path_params["id"]
        if video_id not in self.created:
            return JSONResponse({"error": {"message": "No such video."}}, status_code=404)
        self._note(video_id, "polled")
        return JSONResponse(self._video(video_id))

    async def content(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        video_id = request.path_params["id"]
        if video_id not in self.created or self._video(video_id)["status"] != "completed":
            return JSONResponse({"error": {"message": "Video is not ready."}}, status_code=404)
        if request.query_params.get("variant") == "thumbnail":
            return Response(self.thumbnail, media_type="image/webp")
        self._note(video_id, "downloaded")
        return Response(self.video, media_type="video/mp4")

    def _note(self, video_id: str, event: str) -> None:
        """With --timeline, one JSON line per event (created, polled, downloaded) on stdout, in wall-clock
        seconds: where a gateway's time goes, and how often it polls."""
        if self.timeline:
            print(json.dumps({"id": video_id, event: time.time()}), file=sys.stdout, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--media", type=Path, required=True)
    parser.add_argument("--ready-after", type=float, default=1.0)
    parser.add_argument("--timeline", action="store_true", help="print when each video is created, downloaded")
    args = parser.parse_args()
    app = Upstream(args.media, args.ready_after, args.timeline).app
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
