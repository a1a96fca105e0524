"""A diffusers model's settings, read from its catalog entry's `options` and checked at start-up.

    [models."sora-2-hd-15s-chat"]
    backend = "diffusers:wan"          # kind `diffusers`, one loaded pipeline per name
    seconds = 15
    portrait = "720x1280"              # what clients get; generation happens at the native size below
    landscape = "1280x720"
    fps = 24

    [models."sora-2-hd-15s-chat".options]
    family = "wan"                     # wan | ltx | ltx2
    weights = "/models/Wan2.1-T2V-14B-Diffusers"   # a folder, or a hub id found in the local cache
    steps = 30
    guidance = 5.0
    shots = "cuts"                     # cuts | continue (each shot starts on the last frame of the one before)
    sound = "procedural"               # model (ltx2) | procedural | stable-audio

Everything but `family` and `weights` has a default (see `DiffusionConfig`). Models that share a
backend name share one loaded pipeline, so their options must be the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from reelgate.backends.diffusion.caching import CacheChoice, parse_cache
from reelgate.backends.diffusion.families import FAMILIES, Family

SHOT_MODES = ("cuts", "continue")
SOUNDS = ("model", "procedural", "stable-audio")
OFFLOADS = ("none", "model", "sequential")
DTYPES = ("bfloat16", "float16", "float32")


@dataclass(frozen=True)
class Lora:
    path: str  #: a local .safetensors file (GPU hosts are offline)
    scale: float = 1.0


@dataclass(frozen=True)
class DiffusionConfig:
    family: Family
    weights: str
    #: Weights of the image-to-video pipeline (first frames, `continue` shots): None uses the family's
    #: rule (LTX shares the text model's weights); "same" makes Wan's from the text model (Wan 2.2 TI2V).
    #: A separate checkpoint shares the text encoder, tokenizer and VAE of the text model.
    image_weights: str | None = None
    #: The diffusers class of the image-to-video pipeline; None: the family's (LTX: `LTXConditionPipeline`,
    #: for LTX-Video 0.9.5+; `LTXImageToVideoPipeline` for older checkpoints).
    image_pipeline: str | None = None
    device: str | None = None  #: None: cuda when there is one, else cpu
    dtype: str | None = None  #: None: bfloat16 on a GPU, float32 on the CPU
    steps: int = 30
    guidance: float | None = None  #: None: the family's (Wan 5.0, LTX and LTX-2 3.0); 1.0 for distilled models
    negative_prompt: str = ""
    native_portrait: tuple[int, int] | None = None  #: None: the family's native size, turned
    native_landscape: tuple[int, int] | None = None
    fps: int | None = None  #: the model's native frame rate; None: the family's
    shot_frames: int | None = None  #: frames per run at most; None: the family's
    shots: str = "cuts"
    sound: str = "procedural"
    sound_weights: str | None = None  #: the text-to-audio pipeline (Stable Audio Open) for `stable-audio`
    #: None: the task's own random seed (stored with the task, so a video can be made again); an int
    #: gives every video that seed.
    seed: int | None = None
    loras: tuple[Lora, ...] = ()  #: fused into every transformer of the text model (both Wan 2.2 experts)
    image_loras: tuple[Lora, ...] = ()  #: the same for a separate image-to-video checkpoint (`image_weights`)
    compile: bool | None = None  #: regional torch.compile of the repeated blocks; None: on with a GPU
    attention: str | None = None  #: a diffusers attention backend name (`native`, `_native_cudnn`, `flash`...)
    cache: CacheChoice | None = None  #: from `{"kind": "first-block", "threshold": 0.05}` (see `caching.py`)
    offload: str | None = None  #: none | model | sequential; None: the memory planner's choice (`memory.py`)
    vae_tiling: bool | None = None  #: None: the memory planner's choice
    #: Short runs at start at every shape the catalog serves (pays for compilation); None: when compiling.
    warmup: bool | None = None
    #: Extra keyword arguments for every pipeline call (e.g. LTX-2's `stg_scale`); the family's defaults under them.
    call_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def guidance_scale(self) -> float:
        return self.family.guidance if self.guidance is None else self.guidance

    @property
    def call_arguments(self) -> dict[str, Any]:
        return {**dict(self.family.call_defaults), **self.call_options}

    @property
    def image_class(self) -> str:
        return self.image_pipeline or self.family.image_pipeline

    @property
    def fps_native(self) -> int:
        return self.fps or self.family.fps

    @property
    def frames_per_shot(self) -> int:
        return self.shot_frames or self.family.shot_frames

    def native_size(self, portrait: bool) -> tuple[int, int]:
        width, height = self.family.native_landscape
        if portrait:
            return self.native_portrait or (height, width)
        return self.native_landscape or (width, height)


def parse(name: str, options: Mapping[str, Any]) -> DiffusionConfig:
    """The config of backend `name` from a catalog entry's options; ValueError naming what is wrong."""
    values = dict(options)
    known = {f.name for f in fields(DiffusionConfig)} | {"portrait", "landscape"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"backend {name!r}: unknown options {unknown}")
    family_name = values.pop("family", None)
    if family_name not in FAMILIES:
        raise ValueError(f"backend {name!r}: `family` must be one of {sorted(FAMILIES)}, got {family_name!r}")
    if not isinstance(values.get("weights"), str) or not values["weights"]:
        raise ValueError(f"backend {name!r}: `weights` (a folder or a hub id) is required")
    for side in ("portrait", "landscape"):
        if side in values:
            values[f"native_{side}"] = _size(name, values.pop(side))
    for key in ("loras", "image_loras"):
        if key in values:
            values[key] = tuple(_lora(name, item) for item in values[key])
    if values.get("cache") is not None:
        try:
            values["cache"] = parse_cache(values["cache"], FAMILIES[family_name])
        except ValueError as exc:
            raise ValueError(f"backend {name!r}: {exc}") from None
    config = DiffusionConfig(family=FAMILIES[family_name], **values)
    _check(name, config)
    return config


def _size(name: str, value: object) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in str(value).lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"backend {name!r}: not a size like 832x480: {value!r}") from exc
    return width, height


def _lora(name: str, item: object) -> Lora:
    if isinstance(item, str):
        return Lora(item)
    if isinstance(item, Mapping) and isinstance(item.get("path"), str):
        return Lora(item["path"], float(item.get("scale", 1.0)))
    raise ValueError(f"backend {name!r}: a LoRA is a path or {{path = ..., scale = ...}}, got {item!r}")


def _check(name: str, config: DiffusionConfig) -> None:
    choices = {"shots": SHOT_MODES, "sound": SOUNDS, "offload": (None, *OFFLOADS)}
    for key, allowed in choices.items():
        if getattr(config, key) not in allowed:
            raise ValueError(f"backend {name!r}: `{key}` must be one of {list(allowed)}, got {getattr(config, key)!r}")
    if config.dtype is not None and config.dtype not in DTYPES:
        raise ValueError(f"backend {name!r}: `dtype` must be one of {list(DTYPES)}, got {config.dtype!r}")
    if config.sound == "model" and not config.family.makes_audio:
        raise ValueError(f"backend {name!r}: family {config.family.name!r} makes no audio; use sound = 'procedural'")
    if config.sound == "stable-audio" and not config.sound_weights:
        raise ValueError(f"backend {name!r}: sound = 'stable-audio' needs `sound_weights`")
    if config.image_loras and not config.image_weights:
        raise ValueError(f"backend {name!r}: `image_loras` are for a separate `image_weights` checkpoint")
    _check_shapes(name, config)


def _check_shapes(name: str, config: DiffusionConfig) -> None:
    if config.steps < 1 or config.fps_native < 1:
        raise ValueError(f"backend {name!r}: `steps` and `fps` must be positive")
    step = config.family.frame_step
    if config.frames_per_shot < step + 1 or (config.frames_per_shot - 1) % step:
        raise ValueError(f"backend {name!r}: `shot_frames` must be {step}k+1 (e.g. {step * 10 + 1})")
    for width, height in (config.native_size(True), config.native_size(False)):
        multiple = config.family.side_multiple
        if width % multiple or height % multiple:
            raise ValueError(f"backend {name!r}: native sizes must be multiples of {multiple}, got {width}x{height}")
