"""`reelgate generate` and `reelgate videos list | get | wait | download | delete`.

Exit codes, for scripts (`Outcome`): 0 done; 1 the video failed; 2 bad arguments; 3 the key was
refused or none given; 4 the server refused the request (unknown model or video, bad value, too low a
balance); 5 the server could not be reached or failed; 130 interrupted (the video goes on on the server).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from reelgate.client.api import NewVideo, Video, VideosClient
from reelgate.errors import AuthenticationError, PermissionDenied, ReelgateError

videos_app = typer.Typer(help="List, follow, download and delete videos over the Videos API.", no_args_is_help=True)

Server = Annotated[
    str, typer.Option("--server", envvar="REELGATE_SERVER", help="The server's base URL.", show_default=True)
]
Key = Annotated[
    str | None, typer.Option("--key", envvar="REELGATE_API_KEY", help="API key (sk-...); or set REELGATE_API_KEY.")
]
VideoId = Annotated[str, typer.Argument(help="The video's id, task_...")]
Output = Annotated[Path | None, typer.Option("-o", "--output", help="Where to write the MP4 (default: ID.mp4).")]
DEFAULT_SERVER = "http://127.0.0.1:8000"
#: The Videos API's default model, asked about when only an orientation is given.
DEFAULT_MODEL = "sora-2"


class Outcome(IntEnum):
    OK = 0  #: done
    FAILED = 1  #: the video failed to generate; its error is printed
    USAGE = 2  #: bad arguments or an unreadable file (click's own code for bad arguments)
    KEY = 3  #: the key was refused (401/403), or none was given
    REFUSED = 4  #: the server refused the request: unknown model or video, bad value, too low a balance
    UNREACHABLE = 5  #: no answer from the server, or a server error
    INTERRUPTED = 130  #: Ctrl-C: the video goes on on the server


def outcome_of(error: ReelgateError) -> Outcome:
    if isinstance(error, AuthenticationError | PermissionDenied):
        return Outcome.KEY
    return Outcome.REFUSED if 400 <= error.status_code < 500 else Outcome.UNREACHABLE


@contextmanager
def connected(server: str, key: str | None) -> Iterator[VideosClient]:
    """A client of `server`; every error becomes a one-line message and its exit code."""
    if not key:
        _fail(
            "no API key: pass --key or set REELGATE_API_KEY (the operator makes one with "
            "`reelgate keys create --balance 10`).",
            Outcome.KEY,
        )
    try:
        with VideosClient(server, key) as client:
            yield client
    except ReelgateError as exc:
        _fail(exc.message, outcome_of(exc))
    except OSError as exc:
        _fail(str(exc), Outcome.USAGE)


def _fail(message: str, outcome: Outcome) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(outcome)


def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows, e.g. 海边日落.")],
    model: Annotated[str | None, typer.Option(help="Model id (see /v1/models); default: the server's.")] = None,
    landscape: Annotated[
        bool | None, typer.Option("--landscape/--portrait", help="Orientation, when --size is not given.")
    ] = None,
    seconds: Annotated[str | None, typer.Option(help="Length, where the model offers several (e.g. 8).")] = None,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, among the model's sizes.")] = None,
    image: Annotated[str | None, typer.Option(help="Reference image: a file, or an http(s) URL.")] = None,
    remix: Annotated[str | None, typer.Option(help="Change this earlier video (task_...) by the prompt.")] = None,
    output: Output = None,
    server: Server = DEFAULT_SERVER,
    key: Key = None,
) -> None:
    """Make a video: print its id at once, show its progress, write the MP4. Ctrl-C leaves it running."""
    with connected(server, key) as client:
        if remix:
            video = client.remix(remix, prompt)
        else:
            size = size or _size_for(client, model, landscape)
            video = client.create(NewVideo(prompt, model, seconds, size, image))
        target = output or Path(f"{video['id']}.mp4")
        with _resumable(video["id"], target):  # from the moment the id is out, Ctrl-C says how to resume
            typer.echo(video["id"])
            typer.echo(
                f"{video['model']}, {video['size']}, {video['seconds']} s; also at {client.server}/web/{video['id']}",
                err=True,
            )
            follow(client, video["id"], target)


def _size_for(client: VideosClient, model: str | None, landscape: bool | None) -> str | None:
    """The model's default size for the orientation asked for (reelgate lists sizes in `/v1/models`)."""
    if landscape is None:
        return None
    wanted = model or DEFAULT_MODEL
    found = next((entry for entry in client.models() if entry["id"] == wanted), None)
    sizes = found.get("sizes", []) if found else []
    if len(sizes) < 2:
        _fail(f"the server does not list the sizes of `{wanted}`: pass --size WIDTHxHEIGHT.", Outcome.USAGE)
    return str(sizes[1] if landscape else sizes[0])


def follow(client: VideosClient, video_id: str, output: Path | None) -> None:
    """Show progress until the video is done, then download it to `output` (if given)."""
    with _resumable(video_id, output):
        video = _wait_with_bar(client, video_id)
        if video["status"] == "failed":
            error = video.get("error") or {}
            _fail(f"the video failed: {error.get('message', 'no reason given')}", Outcome.FAILED)
        if output is not None:
            written = client.download(video_id, output)
            typer.echo(f"wrote {written} bytes", err=True)
            typer.echo(str(output))


@contextmanager
def _resumable(video_id: str, output: Path | None) -> Iterator[None]:
    """Ctrl-C inside leaves the video running on the server and prints the command that picks it up."""
    try:
        yield
    except KeyboardInterrupt:
        resume = f"reelgate videos wait {video_id}" + (f" -o {output}" if output else "")
        _fail(f"interrupted; the video goes on on the server. Resume with: {resume}", Outcome.INTERRUPTED)


def _wait_with_bar(client: VideosClient, video_id: str) -> Video:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        shown = bar.add_task(video_id, total=100)

        def update(video: Video) -> None:
            bar.update(shown, completed=int(video.get("progress") or 0), description=f"{video_id} {video['status']}")

        return client.wait(video_id, update)


@videos_app.command("list")
def videos_list(
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first.")] = 20,
    after: Annotated[str | None, typer.Option(help="Start after this id (the `more:` hint of the last page).")] = None,
    server: Server = DEFAULT_SERVER,
    key: Key = None,
) -> None:
    """The key's videos, newest first: id, status, progress, created, model, prompt."""
    with connected(server, key) as client:
        page = client.list(limit, after)
    if page["data"]:
        typer.echo(f"{'id':31}  {'status':11}  {'done':>4}  {'created (UTC)':19}  model  prompt", err=True)
    for video in page["data"]:
        created = datetime.fromtimestamp(video["created_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        progress = f"{video['progress']}%"
        typer.echo(
            f"{video['id']}  {video['status']:11}  {progress:>4}  {created}  {video['model']}  {video['prompt'][:40]}"
        )
    if page.get("has_more"):
        typer.echo(f"more: --after {page['last_id']}", err=True)


@videos_app.command("get")
def videos_get(video_id: VideoId, server: Server = DEFAULT_SERVER, key: Key = None) -> None:
    """One video as JSON."""
    with connected(server, key) as client:
        typer.echo(json.dumps(client.retrieve(video_id), indent=2, ensure_ascii=False))


@videos_app.command("wait")
def videos_wait(video_id: VideoId, output: Output = None, server: Server = DEFAULT_SERVER, key: Key = None) -> None:
    """Follow a video until it is done (with -o, download it); exit 1 if it failed."""
    with connected(server, key) as client:
        follow(client, video_id, output)


@videos_app.command("download")
def videos_download(
    video_id: VideoId,
    output: Output = None,
    thumbnail: Annotated[bool, typer.Option(help="The WebP thumbnail instead of the MP4.")] = False,
    server: Server = DEFAULT_SERVER,
    key: Key = None,
) -> None:
    """Download a completed video (or its thumbnail)."""
    variant, extension = ("thumbnail", "webp") if thumbnail else ("video", "mp4")
    target = output or Path(f"{video_id}.{extension}")
    with connected(server, key) as client:
        client.download(video_id, target, variant)
    typer.echo(str(target))


@videos_app.command("delete")
def videos_delete(video_id: VideoId, server: Server = DEFAULT_SERVER, key: Key = None) -> None:
    """Delete a video and its files."""
    with connected(server, key) as client:
        client.delete(video_id)
    typer.echo(f"deleted {video_id}")
