"""`VideosClient`: OpenAI's Videos API over httpx, with the server's errors as `ReelgateError`s.

Example::

    with VideosClient("http://127.0.0.1:8000", "sk-...") as client:
        video = client.create(NewVideo("海边日落", model="sora-2-hd-10s-chat"))
        video = client.wait(video["id"], on_progress=print)
        client.download(video["id"], Path("sunset.mp4"))
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reelgate.admin.remote import error_from_response
from reelgate.errors import ServiceUnavailable

Video = dict[str, Any]

#: Statuses after which a video changes no more.
FINAL = frozenset({"completed", "failed"})
#: An image given as one of these is sent as a URL; anything else is a file to upload.
URL_SCHEMES = ("http://", "https://", "data:")


@dataclass(frozen=True)
class NewVideo:
    """What `POST /v1/videos` is asked for; None leaves the choice to the model's default."""

    prompt: str
    model: str | None = None
    seconds: str | None = None
    size: str | None = None
    image: str | None = None  #: a file path, or an http(s) or data: URL

    def fields(self) -> dict[str, str]:
        values = {"prompt": self.prompt, "model": self.model, "seconds": self.seconds, "size": self.size}
        return {name: value for name, value in values.items() if value is not None}


class VideosClient:
    def __init__(self, server: str, key: str, *, timeout: float = 60, transport: httpx.BaseTransport | None = None):
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> VideosClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def models(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/models").json()["data"])

    def create(self, video: NewVideo) -> Video:
        if video.image is None or video.image.startswith(URL_SCHEMES):
            body: dict[str, Any] = video.fields()
            if video.image is not None:
                body["input_reference"] = {"image_url": video.image}
            return self._json("POST", "/v1/videos", json=body)
        path = Path(video.image)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            upload = {"input_reference": (path.name, path.read_bytes(), kind)}
        except OSError as exc:
            raise FileNotFoundError(f"cannot read the image {path}: {exc.strerror}") from exc
        return self._json("POST", "/v1/videos", data=video.fields(), files=upload)

    def remix(self, video_id: str, prompt: str) -> Video:
        return self._json("POST", f"/v1/videos/{video_id}/remix", json={"prompt": prompt})

    def retrieve(self, video_id: str) -> Video:
        return self._json("GET", f"/v1/videos/{video_id}")

    def list(self, limit: int = 20, after: str | None = None) -> dict[str, Any]:
        params = {"limit": limit, **({"after": after} if after else {})}
        return self._json("GET", "/v1/videos", params=params)

    def delete(self, video_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/v1/videos/{video_id}")

    def wait(self, video_id: str, on_progress: Callable[[Video], None], poll: float = 1.0) -> Video:
        """Retrieve until the video is completed or failed, calling `on_progress` with each snapshot."""
        while True:
            video = self.retrieve(video_id)
            on_progress(video)
            if video["status"] in FINAL:
                return video
            time.sleep(poll)

    def download(self, video_id: str, target: Path, variant: str = "video") -> int:
        """Stream the video (or `thumbnail`) into `target` through a `.part` file; the bytes written."""
        partial = target.with_name(target.name + ".part")
        try:
            written = self._stream_into(partial, f"/v1/videos/{video_id}/content", {"variant": variant})
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        return written

    def _stream_into(self, path: Path, url: str, params: dict[str, str]) -> int:
        written = 0
        try:
            with self._http.stream("GET", url, params=params) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                with path.open("wb") as out:
                    for chunk in response.iter_bytes():
                        written += out.write(chunk)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return written

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, **kwargs).json()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    def _unreachable(self, exc: httpx.HTTPError) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"Cannot reach the server at {self.server}: {exc}. Is `reelgate serve` running there? "
            "Point at another with --server or REELGATE_SERVER."
        )
