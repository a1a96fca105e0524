"""One video on a loaded model (blocking; runs in the backend's GPU thread).

    shots.plan -> one pipeline run per shot (text, or image + text for a first frame or a
    continued shot) -> soundtrack -> frames scaled to the requested size -> MP4

An edit (`spec.edit_of`) runs the video-to-video pipeline instead: each shot starts from the source's
frames of its time (at the model's rate and generation size), `EDIT_STRENGTH` of the way back to noise,
so the source's layout and motion stay while the prompt changes the rest; the sound is the source's own.

Cancellation: `stop` is checked after every denoising step (in `callback_on_step_end`) and every
written frame. Raising from the callback ends the pipeline at once; only setting `_interrupt`
would still run the VAE decode of a video nobody wants. A pipeline left by an exception skips its
own clean-up (`maybe_free_model_hooks`: cache hook state, offloaded models), so it is done here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reelgate.backends.base import GeneratedVideo, ProgressCallback, VideoSpec, full_prompt
from reelgate.backends.diffusion import framing, shots, sound
from reelgate.backends.diffusion.config import DiffusionConfig
from reelgate.backends.diffusion.loader import Loaded
from reelgate.backends.diffusion.progress import Progress
from reelgate.errors import GenerationError
from reelgate.media.encode import SAMPLE_RATE, Mp4Writer, samples_for_frame
from reelgate.media.source import SourceFrames, fitted_sound

#: How far an edit takes the source's frames back toward noise (1.0 would ignore them).
EDIT_STRENGTH = 0.7


class Stopped(Exception):
    """The task was cancelled; raised in the GPU thread at the next step."""


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  #: (frames, height, width, 3) uint8 at the generation size
    audio: np.ndarray | None  #: (channels, samples) from models that make sound
    audio_rate: int = SAMPLE_RATE


@dataclass(frozen=True)
class Job:
    """What one render needs besides the spec."""

    loaded: Loaded
    config: DiffusionConfig
    stop: threading.Event
    preset: str = "veryfast"


def render(job: Job, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
    prompt, seed = _prompt_and_seed(spec, job.config)
    config = job.config
    plan = shots.plan(
        prompt,
        seed,
        seconds=spec.seconds,
        fps=spec.fps,
        native_fps=config.fps_native,
        max_frames=config.frames_per_shot,
        frame_step=job.loaded.frame_step,
    )
    progress = Progress(on_progress, len(plan))
    size = framing.generation_size(
        (spec.width, spec.height), config.native_size(spec.height > spec.width), job.loaded.side_multiple
    )
    clips = _clips(job, spec, plan, size, progress)
    audio = _soundtrack(job, spec, prompt, seed, plan, clips)
    progress.sound_ready()
    video = workdir / "video.mp4"
    _write(job, spec, plan, clips, audio, video, progress)
    return GeneratedVideo(video=video)


def _prompt_and_seed(spec: VideoSpec, config: DiffusionConfig) -> tuple[str, int]:
    """A remix keeps its parent's prompt, with the instruction added, and its seed."""
    seed = spec.seed if config.seed is None else config.seed
    if spec.remix_of is None:
        return spec.prompt, seed
    return full_prompt(spec), spec.remix_of.seed if config.seed is None else seed


def _clips(job: Job, spec: VideoSpec, plan: list[shots.Shot], size: tuple[int, int], progress: Progress) -> list[Clip]:
    if spec.edit_of is not None:
        source = SourceFrames(spec.edit_of.video, job.config.fps_native, *size)
        return [generate_shot(job, shot, size, None, progress, _source_run(job, spec, shot, source)) for shot in plan]
    image = _opening(spec, size)
    clips: list[Clip] = []
    for shot in plan:
        if clips and job.config.shots == "continue":
            image = Image.fromarray(clips[-1].frames[-1])
        clips.append(generate_shot(job, shot, size, image, progress))
        image = None
    return clips


def _source_run(job: Job, spec: VideoSpec, shot: shots.Shot, source: SourceFrames) -> list[Image.Image]:
    """The source's frames a shot of an edit remakes: from its first output frame's time, at the model's rate."""
    first = shot.start * job.config.fps_native // spec.fps
    return [Image.fromarray(source.frame(first + k)) for k in range(shot.frames)]


def _opening(spec: VideoSpec, size: tuple[int, int]) -> Image.Image | None:
    """The image the first shot starts from: the request's reference image, else its first character's
    key frame (image-to-video keeps the character's look), else None (text-to-video)."""
    path = spec.first_frame or (spec.characters[0].frame if spec.characters else None)
    if path is None:
        return None
    with Image.open(path) as image:
        return framing.cover_image(image.convert("RGB"), *size)


def generate_shot(
    job: Job,
    shot: shots.Shot,
    size: tuple[int, int],
    image: Image.Image | None,
    progress: Progress,
    video: list[Image.Image] | None = None,
) -> Clip:
    """One pipeline run: from text, from an `image` and text, or (an edit) from a `video` and text."""
    import torch

    config, loaded = job.config, job.loaded
    pipe = _pipeline(loaded, image, video)

    def on_step(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if job.stop.is_set():
            raise Stopped
        progress.step(shot.index, step + 1, pipeline.num_timesteps)
        return tensors

    if job.stop.is_set():
        raise Stopped
    arguments: dict[str, Any] = {
        "prompt": shot.prompt,
        "negative_prompt": config.negative_prompt,
        "width": size[0],
        "height": size[1],
        "num_frames": shot.frames,
        "num_inference_steps": config.steps,
        "guidance_scale": config.guidance_scale,
        "generator": torch.Generator("cpu").manual_seed(shot.seed),
        "output_type": "np",
        "callback_on_step_end": on_step,
        **config.call_arguments,
    }
    if config.family.takes_frame_rate:
        arguments["frame_rate"] = config.fps_native
    if image is not None:
        arguments["image"] = image
    if video is not None:  # its frame count is the video's
        del arguments["num_frames"]
        arguments.update(video=video, strength=EDIT_STRENGTH)
    try:
        output = pipe(**arguments)
    except BaseException:
        # Cache hooks keep the stopped run's tensors (the next run of another shape would fail on
        # them) and an offloaded model stays on the GPU: what the pipeline does when it finishes.
        pipe.maybe_free_model_hooks()
        raise
    progress.decoded(shot.index)
    frames = framing.to_uint8(np.asarray(output.frames[0]))
    if not config.family.makes_audio:
        return Clip(frames, None)
    audio = output.audio[0].float().cpu().numpy()
    return Clip(frames, audio, int(pipe.vocoder.config.output_sampling_rate))


def _pipeline(loaded: Loaded, image: Image.Image | None, video: list[Image.Image] | None) -> Any:
    if video is not None:
        if loaded.video_pipeline is None:
            raise GenerationError("This model cannot edit videos: its family has no video-to-video pipeline.")
        return loaded.video_pipeline
    if image is not None and loaded.image_pipeline is None:
        raise GenerationError(
            "This model cannot start a video from an image: its catalog entry names no `image_weights`."
        )
    return loaded.pipeline if image is None else loaded.image_pipeline


def _soundtrack(
    job: Job, spec: VideoSpec, prompt: str, seed: int, plan: list[shots.Shot], clips: list[Clip]
) -> np.ndarray:
    total = spec.seconds * SAMPLE_RATE
    own = fitted_sound(spec.edit_of.video, total) if spec.edit_of is not None else None
    if own is not None:
        return own
    if job.config.sound == "model":
        pieces = [
            sound.to_48k(clip.audio, clip.audio_rate, _samples(shot.end, spec.fps) - _samples(shot.start, spec.fps))
            for shot, clip in zip(plan, clips, strict=True)
            if clip.audio is not None
        ]
        return np.concatenate(pieces)
    if job.config.sound == "stable-audio":
        return _text_to_audio(job, prompt, seed, spec.seconds, total)
    return sound.procedural(prompt, seed, spec.seconds, spec.fps, [shot.start for shot in plan[1:]])


def _samples(frame: int, fps: int) -> int:
    return frame * SAMPLE_RATE // fps


def _text_to_audio(job: Job, prompt: str, seed: int, seconds: int, samples: int) -> np.ndarray:
    import torch

    pipe = job.loaded.audio_pipeline
    assert pipe is not None

    def on_step(step: int, timestep: Any, latents: Any) -> None:
        if job.stop.is_set():
            raise Stopped

    output = pipe(
        prompt=prompt,
        negative_prompt="Low quality.",
        audio_end_in_s=float(seconds),
        num_inference_steps=50,
        generator=torch.Generator("cpu").manual_seed(seed),
        callback=on_step,
    )
    audio = output.audios[0].float().cpu().numpy()
    return sound.to_48k(audio, int(pipe.vae.sampling_rate), samples)


def _write(
    job: Job,
    spec: VideoSpec,
    plan: list[shots.Shot],
    clips: list[Clip],
    audio: np.ndarray,
    path: Path,
    progress: Progress,
) -> None:
    """Each shot's frames at the output frame rate (a model frame per output frame time), scaled."""
    total = spec.seconds * spec.fps
    native_fps = job.config.fps_native
    with Mp4Writer(path, spec.width, spec.height, spec.fps, preset=job.preset) as writer:
        for shot, clip in zip(plan, clips, strict=True):
            last: tuple[int, np.ndarray] | None = None
            for local in range(shot.length):
                if job.stop.is_set():
                    raise Stopped
                source = min(len(clip.frames) - 1, local * native_fps // spec.fps)
                if last is None or last[0] != source:
                    last = (source, framing.cover(clip.frames[source], spec.width, spec.height))
                index = shot.start + local
                writer.write(last[1], audio[samples_for_frame(index, spec.fps)])
                progress.encoded(index + 1, total)
