"""Loading a model once per worker: weights, dtype, device, LoRAs, placement and the speed switches.

Runs in the backend's GPU thread at start-up, never inside a request. Everything torch or diffusers
raises here becomes a `LoadError` whose message is what `/readyz` shows. Before any weight is read,
the memory planner (`memory.py`) decides where the components live, or refuses with its figures.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelgate.backends.diffusion import memory
from reelgate.backends.diffusion.config import DiffusionConfig, Lora
from reelgate.backends.diffusion.weights import WeightsNotFound, resolve

log = logging.getLogger(__name__)


class LoadError(Exception):
    """The model could not be loaded; the message says why and names what is missing."""


@dataclass
class Loaded:
    pipeline: Any  #: text to video
    image_pipeline: Any | None  #: first image and text to video; None when the model has none
    audio_pipeline: Any | None  #: text to audio, for `sound = "stable-audio"`
    device: str
    side_multiple: int  #: width and height must be multiples of this
    frame_step: int  #: frame counts must be `frame_step * k + 1`
    placement: memory.Placement = memory.ON_THE_SPOT  #: where the components live
    #: a video and text to a changed video (edits), on the text model's weights; None when the family has none
    video_pipeline: Any | None = None


def load(config: DiffusionConfig, shapes: tuple[memory.Shape, ...] = ()) -> Loaded:
    """The model, placed to fit the device for every shape in `shapes` (the catalog's largest runs)."""
    try:
        return _load(config, shapes)
    except (WeightsNotFound, memory.DoesNotFit) as exc:
        raise LoadError(str(exc)) from exc
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        raise LoadError(f"{type(exc).__name__}: {exc}") from exc


def _load(config: DiffusionConfig, shapes: tuple[memory.Shape, ...]) -> Loaded:
    import diffusers
    import torch

    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, config.dtype or ("float32" if device == "cpu" else "bfloat16"))
    weights = resolve(config.weights)
    image_weights = None if config.image_weights in (None, "same") else resolve(config.image_weights, "image_weights")
    placement = _placement(config, weights, image_weights, shapes, dtype, device)
    log.info("loading %s pipeline from %s (%s on %s)", config.family.name, weights, dtype, device)
    text_class = getattr(diffusers, config.family.text_pipeline)
    pipe = text_class.from_pretrained(weights, dtype=_dtypes(config, dtype), local_files_only=True)
    _apply_loras(pipe, config.loras)
    image_pipe = _image_pipeline(pipe, config, dtype, image_weights)
    video_pipe = _video_pipeline(pipe, config)
    for each in _distinct(pipe, image_pipe):
        _speed_up(each, config, device)
    for each in (pipe, image_pipe, video_pipe):
        if each is not None:
            _place(each, placement, device)
            each.set_progress_bar_config(disable=True)
    audio_pipe = _audio_pipeline(config, dtype, device)
    side, step = _shape_rules(pipe, config)
    return Loaded(pipe, image_pipe, audio_pipe, device, side, step, placement, video_pipeline=video_pipe)


def _placement(
    config: DiffusionConfig,
    weights: Path,
    image_weights: Path | None,
    shapes: tuple[memory.Shape, ...],
    dtype: Any,
    device: str,
) -> memory.Placement:
    """The planner's choice on a GPU; on the CPU, the options as given (nothing to fit)."""
    if not device.startswith("cuda"):
        return memory.Placement(config.offload or "none", bool(config.vae_tiling))
    import torch

    footprint = memory.footprint(config, weights, image_weights, shapes, dtype)
    capacity = torch.cuda.get_device_properties(torch.device(device)).total_memory
    placement = memory.choose(footprint, capacity, offload=config.offload, vae_tiling=config.vae_tiling)
    log.info("memory plan for %s: %s", config.family.name, placement.describe())
    return placement


def _dtypes(config: DiffusionConfig, dtype: Any) -> dict[str, Any]:
    """Each component's dtype: the family's float32 parts (Wan's VAE and CLIP) keep full precision."""
    import torch

    return {"default": dtype, **dict.fromkeys(config.family.float32_parts, torch.float32)}


def _image_pipeline(pipe: Any, config: DiffusionConfig, dtype: Any, folder: Path | None) -> Any | None:
    """The image-to-video pipeline: on the text model's weights, or a checkpoint sharing its text side and VAE."""
    import diffusers

    image_class = getattr(diffusers, config.image_class)
    if folder is None:
        if config.family.image_shares_weights or config.image_weights == "same":
            return _on_same_weights(image_class, pipe)
        return None
    shared = {name: getattr(pipe, name) for name in ("text_encoder", "tokenizer", "vae")}
    image_pipe = image_class.from_pretrained(folder, dtype=_dtypes(config, dtype), local_files_only=True, **shared)
    _apply_loras(image_pipe, config.image_loras)  # never the text model's: they were trained for other weights
    return image_pipe


def _video_pipeline(pipe: Any, config: DiffusionConfig) -> Any | None:
    """The video-to-video pipeline on the text model's own components (so no second copy of any weight);
    None for a family without one, or a two-expert model (Wan 2.2) that it cannot run."""
    import diffusers

    if config.family.video_pipeline is None or getattr(pipe, "transformer_2", None) is not None:
        return None
    return _on_same_weights(getattr(diffusers, config.family.video_pipeline), pipe)


def _on_same_weights(pipeline_class: Any, pipe: Any) -> Any:
    """`pipeline_class` on `pipe`'s own components, as `from_pipe` makes it but without its final cast of
    every module to one dtype (float32 when none is given): the modules are shared, so that cast would
    also undo the text pipeline's mixed precision (a bfloat16 transformer made float32, twice the memory)."""
    import inspect

    accepted = inspect.signature(pipeline_class.__init__).parameters
    return pipeline_class(**{name: part for name, part in pipe.components.items() if name in accepted})


def _distinct(pipe: Any, image_pipe: Any | None) -> list[Any]:
    """The pipelines whose transformers need speeding up: `from_pipe` shares the text model's."""
    if image_pipe is None or image_pipe.transformer is pipe.transformer:
        return [pipe]
    return [pipe, image_pipe]


def _apply_loras(pipe: Any, loras: tuple[Lora, ...]) -> None:
    """Load the step-distilled (or any) LoRAs, fuse them into every transformer and drop the adapters.

    Wan 2.2 A14B has two experts (`transformer`, `transformer_2`); a LoRA left unfused in one of them
    would be dropped with the adapters, and that expert would run undistilled.
    """
    if not loras:
        return
    names = []
    for index, lora in enumerate(loras):
        path = Path(lora.path).expanduser()
        if not path.is_file():
            raise WeightsNotFound(f"LoRA file {str(path)!r} does not exist")
        name = f"reelgate_{index}"
        pipe.load_lora_weights(str(path), adapter_name=name)
        names.append(name)
        if getattr(pipe, "transformer_2", None) is not None:  # Wan 2.2 A14B: both experts take it
            pipe.load_lora_weights(str(path), adapter_name=f"{name}_2", load_into_transformer_2=True)
            names.append(f"{name}_2")
    scales = [lora.scale for lora in loras for _ in range(len(names) // len(loras))]
    pipe.set_adapters(names, adapter_weights=scales)
    components = [name for name in ("transformer", "transformer_2") if getattr(pipe, name, None) is not None]
    pipe.fuse_lora(components=components, adapter_names=names)
    pipe.unload_lora_weights()


def _transformers(pipe: Any) -> list[Any]:
    return [t for t in (getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None)) if t is not None]


def _speed_up(pipe: Any, config: DiffusionConfig, device: str) -> None:
    for transformer in _transformers(pipe):
        if config.attention:
            transformer.set_attention_backend(config.attention)
        if config.cache is not None:
            transformer.enable_cache(config.cache.hook_config(config.steps))
        if config.compile if config.compile is not None else device.startswith("cuda"):
            # A cache hook that runs outside the graph (torch.compiler.disable) breaks it: no fullgraph then.
            transformer.compile_repeated_blocks(fullgraph=config.cache is None or not config.cache.breaks_graphs)


def _place(pipe: Any, placement: memory.Placement, device: str) -> None:
    if placement.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif placement.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if placement.vae_tiling:
        pipe.vae.enable_tiling()


def _audio_pipeline(config: DiffusionConfig, dtype: Any, device: str) -> Any | None:
    if config.sound != "stable-audio":
        return None
    import diffusers

    assert config.sound_weights is not None
    folder = resolve(config.sound_weights, "sound_weights")
    audio = diffusers.StableAudioPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True)
    audio.set_progress_bar_config(disable=True)
    return audio.to(device)


def _shape_rules(pipe: Any, config: DiffusionConfig) -> tuple[int, int]:
    """Side multiple and frame step meeting both the family's rule and the loaded model's VAE and patches."""
    if config.family.name == "wan":
        side = pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1]
        step = pipe.vae_scale_factor_temporal
    else:
        side = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        step = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
    return math.lcm(side, config.family.side_multiple), math.lcm(step, config.family.frame_step)
