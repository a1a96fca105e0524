"""Videos longer than one upstream call makes, and extensions of videos an upstream made: chains of calls.

    extend   create 8 s -> extend +7 s -> ...    the provider's own extension (Veo 3.1): its last answer is
                                                 the whole video; only that one is downloaded
    shots    create -> image-to-video from the   every call's video downloaded, the next started on its last
             last frame -> ...                   frame; the parts joined (frames and sound) into one MP4
    an extension of a relayed video              the same upstream's extension call(s) on the source's own
                                                 reference (kept in the source task's checkpoint)

Whatever the chain makes beyond the seconds asked is cut off, so a 15 s video is 15 s. Each call is an
ordinary relayed job (placed, followed and resumed by `backend.py`); the task's checkpoint keeps the
finished calls and the one in flight, so a restart goes on at the call it stopped in and never orders a
finished one again. The task is charged once, at admission, whatever the number of calls.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from reelgate.backends.base import Checkpoint, GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome, Watch
from reelgate.backends.relay.protocols import makes_of, models_of
from reelgate.backends.relay.routing import Plan, Route
from reelgate.backends.relay.veo import resolution
from reelgate.errors import GenerationError
from reelgate.media.join import join, last_frame
from reelgate.media.probe import probe

if TYPE_CHECKING:
    from reelgate.catalog import ModelEntry

#: Kinds with an extension call, and the seconds one call adds (None: as many as asked).
EXTENDS: dict[str, int | None] = {"veo": 7, "openai-videos": None}
#: Kinds whose calls can be joined as shots (each a new video, from an image after the first).
SHOTS = ("openai-videos", "veo", "kling", "dashscope", "ark", "minimax", "replicate", "fal")


def check_chain(model: str, chain: str, kind: str, sizes: Iterable[str] = ()) -> None:
    """ValueError naming `model` when its upstream kind cannot chain calls as `chain` says (`sizes`: the
    sizes its upstream is asked for, as the catalog maps them)."""
    if chain == "extend" and kind not in EXTENDS:
        raise ValueError(
            f"model {model!r}: options.chain = 'extend' needs an upstream with its own extension call "
            f"({', '.join(EXTENDS)}), and {kind} has none; use options.chain = 'shots'"
        )
    if chain == "extend" and kind == "veo" and any(resolution(size) != "720p" for size in sizes):
        asked = ", ".join(sorted({resolution(size) for size in sizes}))
        raise ValueError(
            f"model {model!r}: Veo extends 720p videos only, and this model's sizes ask for {asked}; "
            "map them to 720p (options.sizes) or use options.chain = 'shots'"
        )
    if chain == "shots" and kind not in SHOTS:
        raise ValueError(f"model {model!r}: options.chain = 'shots' needs a video API upstream, not {kind}")


def check_models(model: str, chain: str, route: Route) -> None:
    """ValueError naming `model` when `route`'s upstream model cannot make the calls `chain` takes: shots
    after the first start from an image, so a text-only model cannot chain them (a separate image-to-video
    model is not substituted: the entry would then sell two models under one name); an extension needs a
    model the kind's extension call takes (Veo: 3.1 only)."""
    for orientation, name in models_of(route).items():
        makes = makes_of(route, orientation)
        if chain == "shots" and not makes.image:
            raise ValueError(
                f"model {model!r}: options.chain = 'shots' starts every call after the first from the last "
                f"frame before (image-to-video), and the upstream model {name!r} at {route.upstream.name!r} "
                "makes videos from text only; name a model that also takes an image, or only durations "
                "one call makes"
            )
        if chain == "extend" and not makes.extends:
            raise ValueError(f"model {model!r}: options.chain = 'extend': {no_extension(name, route)}")


def no_extension(name: str, route: Route) -> str:
    """Why the upstream model `name` of `route` cannot extend (for start-up errors and 400s alike)."""
    why = " (Veo extends videos with its 3.1 models only)" if route.upstream.kind == "veo" else ""
    return f"the upstream model `{name}` at `{route.upstream.name}` has no extension call{why}."


def sent_sizes(entry: ModelEntry, route: Route) -> list[str]:
    """The sizes `route`'s upstream is asked for, for each size `entry` makes."""
    return [
        route.sizes.get(f"{width}x{height}") or route.sizes.get(orientation.value) or f"{width}x{height}"
        for orientation, (width, height) in entry.sizes.items()
    ]


def chain_advice(kind: str) -> str:
    """What a catalog entry for `kind` may write to chain calls."""
    return "'extend' (its own extension call) or 'shots'" if kind in EXTENDS else "'shots' (joined calls)"


@dataclass(frozen=True)
class Step:
    seconds: int  #: what the call is asked to make (or add, for an extension)
    extends: bool  #: the upstream's extension call on the previous video, else a new video


def chained(plan: Plan, spec: VideoSpec) -> bool:
    """Whether `spec` takes more than one plain call: an extension, or longer than one call makes."""
    return spec.extend_of is not None or by_chain(plan, spec.seconds)


def by_chain(plan: Plan, seconds: int) -> bool:
    """Whether `plan` makes `seconds` by chaining calls (so one call need not make them: no refusal)."""
    mapped = any(seconds in route.seconds for route in plan.routes)
    return plan.chain is not None and bool(plan.made) and not mapped and seconds not in plan.made


def steps(plan: Plan, kind: str, seconds: int) -> list[Step]:
    """The calls that make `seconds` (at least), fewest first.

    >>> veo = Plan("m", (), chain="extend", made=(4, 6, 8))
    >>> [(s.seconds, s.extends) for s in steps(veo, "veo", 15)]
    [(8, False), (7, True)]
    >>> [s.seconds for s in steps(Plan("m", (), chain="shots", made=(5, 10)), "kling", 25)]
    [10, 10, 5]
    """
    made = plan.made or (seconds,)
    add = EXTENDS.get(kind)
    if plan.chain == "extend" and add is not None:
        more = max(0, math.ceil((seconds - max(made)) / add))
        first = min(d for d in made if d + add * more >= seconds)
        return [Step(first, False), *[Step(add, True)] * more]
    out: list[int] = []
    while seconds - sum(out) > max(made):
        out.append(max(made))
    out.append(min(d for d in made if d >= seconds - sum(out)))
    return [Step(s, False) for s in out]


def extension_steps(kind: str, seconds: int) -> list[Step]:
    """The extension calls that add `seconds` (at least) to a video the upstream made."""
    add = EXTENDS.get(kind)
    if add is None:
        return [Step(seconds, True)]
    return [Step(add, True)] * math.ceil(seconds / add)


@dataclass(frozen=True)
class Done:
    """A finished call: where it ran, the upstream's reference to its video, and the video's links."""

    upstream: str
    ref: str | None
    urls: tuple[str, ...] = ()


def source_of(backend_state: str | None) -> Done | None:
    """The finished video a task's checkpoint names (its last call's), or None when it names none."""
    try:
        data = json.loads(backend_state) if backend_state else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if "chain" in data:
        done = data.get("done") or []
        return _done(done[-1]) if done else None
    if "relay" in data:
        try:
            state = JobState.load(backend_state or "")
        except GenerationError:
            return None
        return Done(state.upstream, state.video_ref) if state.video_ref else None
    return None


def extension_refusal(plan: Plan, backend_state: str | None) -> str | None:
    """Why `plan` cannot extend the video whose task kept `backend_state`, or None when it can: an upstream
    extends only a video it made, named by its own reference, on an upstream this plan routes to."""
    source = source_of(backend_state)
    if source is None or source.ref is None:
        return "the upstream extends only videos it made, and this one was not made there."
    routes = [route for route in plan.routes if route.upstream.name == source.upstream]
    if not routes:
        return f"it was made at the upstream `{source.upstream}`, which does not serve this model."
    for route in routes:  # any of them may get the extension, so each must make it
        for orientation, name in models_of(route).items():
            if not makes_of(route, orientation).extends:
                return no_extension(name, route)
    return None


def _done(data: dict[str, Any]) -> Done:
    return Done(data["upstream"], data.get("ref"), tuple(data.get("urls") or ()))


@dataclass
class ChainState:
    """The task's checkpoint for a chain: the finished calls, and the job of the one in flight."""

    parent: Checkpoint | None
    done: list[Done] = field(default_factory=list)
    job: str | None = None

    @classmethod
    def of(cls, parent: Checkpoint | None) -> ChainState:
        try:
            data = json.loads(parent.saved) if parent and parent.saved else {}
        except ValueError as exc:
            raise GenerationError(
                "This video's upstream calls could not be resumed: their saved state is unreadable.",
                code="upstream_lost",
            ) from exc
        if not isinstance(data, dict) or "chain" not in data:  # a plain job saved earlier goes on as the first call
            return cls(parent, job=parent.saved if parent and parent.saved else None)
        return cls(parent, [_done(each) for each in data["done"]], data.get("job"))

    def for_call(self, index: int) -> Checkpoint | None:
        """The checkpoint call `index` keeps its job in (the same task's, holding the whole chain)."""
        if self.parent is None:
            return None

        async def save(text: str) -> None:
            self.job = text
            await self._save()

        return Checkpoint(self.parent.task_id, self.job if index == len(self.done) else None, save)

    async def finished(self, done: Done) -> None:
        self.done.append(done)
        self.job = None
        await self._save()

    async def _save(self) -> None:
        if self.parent is not None:
            data = {"chain": 1, "done": [asdict(each) for each in self.done], "job": self.job}
            await self.parent.save(json.dumps(data, separators=(",", ":")))


class Calls(Protocol):
    """What a chain needs of the relay backend: one job run to its end, and a download."""

    async def call(
        self, plan: Plan, spec: VideoSpec, watch: Watch, shape: Callable[[JobRequest], JobRequest]
    ) -> tuple[str, Outcome]:
        """Run one job (placed, or resumed from `watch`'s state); its upstream's name and outcome."""
        ...

    async def download(self, upstream: str, urls: tuple[str, ...], path: Path) -> Path: ...

    def video_ref(self, upstream: str, state: JobState | None, outcome: Outcome) -> str | None: ...

    def kind(self, upstream: str) -> str: ...


class Chain:
    """One relayed video made by several calls (see the module's docstring)."""

    def __init__(self, calls: Calls, plan: Plan, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback):
        self.calls, self.plan, self.spec, self.workdir = calls, plan, spec, workdir
        self.on_progress = on_progress
        self.state = ChainState.of(spec.checkpoint)

    async def make(self) -> GeneratedVideo:
        source = self._source()
        if source is not None:
            return await self._extend(source)
        kind = self.calls.kind(self.plan.routes[0].upstream.name)
        plan_steps = steps(self.plan, kind, self.spec.seconds)
        if plan_steps[0].seconds >= self.spec.seconds or any(step.extends for step in plan_steps):
            last = await self._run(plan_steps, None)
            return await self._finish([await self._fetch(last, 0)], self.spec.seconds)
        return await self._shots(plan_steps)

    def _source(self) -> Done | None:
        lead = self.spec.extend_of
        if lead is None:
            return None
        found = source_of(lead.backend_state)
        if found is None or found.ref is None:
            raise GenerationError(
                f"The model `{self.spec.model}` cannot extend this video: the upstream that made it "
                "keeps no reference to it that its extension call could use.",
                code="not_extendable",
            )
        return found

    async def _extend(self, source: Done) -> GeneratedVideo:
        lead = self.spec.extend_of
        assert lead is not None
        added = self.spec.seconds - lead.seconds
        last = await self._run(extension_steps(self.calls.kind(source.upstream), added), source)
        had = await asyncio.to_thread(lambda: probe(lead.video).duration)
        return await self._finish([await self._fetch(last, 0)], had + added)

    async def _run(self, plan_steps: list[Step], previous: Done | None) -> Done:
        """Each call in turn, the finished ones taken from the checkpoint; the last call's result."""
        for index, step in enumerate(plan_steps):
            if index < len(self.state.done):
                previous = self.state.done[index]
                continue
            previous = await self._call(index, len(plan_steps), step, previous, None)
        assert previous is not None
        return previous

    async def _shots(self, plan_steps: list[Step]) -> GeneratedVideo:
        parts: list[Path] = []
        image: Path | None = self.spec.first_frame
        for index, step in enumerate(plan_steps):
            if index < len(self.state.done):
                done = self.state.done[index]
            else:
                done = await self._call(index, len(plan_steps), step, None, image)
            parts.append(await self._fetch(done, index))
            image = await asyncio.to_thread(self._last_frame, parts[-1], index)
        return await self._finish(parts, self.spec.seconds)

    async def _call(self, index: int, count: int, step: Step, previous: Done | None, image: Path | None) -> Done:
        plan = self._plan_for(previous if step.extends else None)
        spec = replace(
            self.spec,
            seconds=step.seconds,
            first_frame=image if not step.extends else None,
            extend_of=None,
            checkpoint=self.state.for_call(index),
        )
        ref = previous.ref if step.extends and previous else None
        watch = Watch(_share(self.on_progress, index, count), spec.checkpoint)
        upstream, outcome = await self.calls.call(plan, spec, watch, _shaped(step, ref, index))
        done = Done(upstream, self.calls.video_ref(upstream, watch.state, outcome), outcome.video_urls)
        await self.state.finished(done)
        return done

    def _plan_for(self, previous: Done | None) -> Plan:
        """An extension runs where the video it extends was made: that upstream's routes only."""
        if previous is None:
            return self.plan
        routes = tuple(route for route in self.plan.routes if route.upstream.name == previous.upstream)
        if not routes:
            raise GenerationError(
                f"The upstream `{previous.upstream}` that made the video to extend is no longer configured "
                f"for the model `{self.spec.model}`.",
                code="not_extendable",
            )
        return replace(self.plan, routes=routes)

    async def _fetch(self, done: Done, index: int) -> Path:
        return await self.calls.download(done.upstream, done.urls, self.workdir / f"part-{index}.mp4")

    def _last_frame(self, video: Path, index: int) -> Path:
        path = self.workdir / f"part-{index}-last.png"
        Image.fromarray(last_frame(video)).save(path)
        return path

    async def _finish(self, parts: list[Path], seconds: float) -> GeneratedVideo:
        """The parts as one MP4 at the first part's size and rate, cut at `seconds`."""
        info = await asyncio.to_thread(probe, parts[0])
        out = self.workdir / "video.mp4"
        fps = max(1, round(info.fps))
        await asyncio.to_thread(join, parts, out, width=info.width, height=info.height, fps=fps, seconds=seconds)
        self.on_progress(100)
        return GeneratedVideo(out)


def _shaped(step: Step, ref: str | None, index: int) -> Callable[[JobRequest], JobRequest]:
    """Call `index` as its step says; its own idempotency key, or an upstream would answer the first call."""

    def shape(job: JobRequest) -> JobRequest:
        key = f"{job.idempotency_key}-{index}" if index else job.idempotency_key
        return replace(job, seconds=step.seconds, extend=ref, image=None if ref else job.image, idempotency_key=key)

    return shape


def _share(on_progress: ProgressCallback, index: int, count: int) -> ProgressCallback:
    """Call `index`'s progress as its share of the whole (the join after the last call takes the last 1%)."""

    def report(percent: int) -> None:
        on_progress(min(99, (index * 100 + percent) // count))

    return report
